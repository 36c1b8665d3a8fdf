"""A real Airflow stack for a test module: `python -m mlbatch up` (api-server, scheduler,
dag-processor, triggerer) on a free port, its own home, and a dags folder of the test's choosing."""
from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import psutil

PROJECT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


@dataclass
class AirflowStack:
    proc: subprocess.Popen
    port: int
    token: str
    home: Path

    def api(self, method: str, path: str, body: dict | None = None) -> Any:
        return http(method, f"http://127.0.0.1:{self.port}{path}", body, self.token)


def http(method: str, url: str, body: dict | None = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, method=method, headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def wait_for(check: Callable[[], Any], within_s: float, every_s: float = 2.0) -> Any:
    """The first truthy value of `check`, or its last value after `within_s` (a bound, not a timing)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(every_s)
    return check()


@contextlib.contextmanager
def airflow_stack(root: Path, dags: Path, env: dict[str, str] | None = None) -> Iterator[AirflowStack]:
    """Start the stack with `dags` as its dags folder and `root/airflow_home`; kill it on exit."""
    home = root / "airflow_home"
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
           "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5", **(env or {})}
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([AIRFLOW, "pools", "set", "mlbatch_local", "2", "local workers"], env=env, check=True,
                   capture_output=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "mlbatch", "up", "--port", str(port)], env=env, cwd=PROJECT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        banner = ""
        for line in proc.stdout:
            banner += line
            if "Ctrl-C" in line or "exited early" in line or "did not answer" in line:
                break
        found = re.search(r"user: admin\s+password: (\S+)", banner)
        assert found, f"the stack did not start:\n{banner}"
        token = http("POST", f"http://127.0.0.1:{port}/auth/token", {"username": "admin", "password": found.group(1)})
        yield AirflowStack(proc, port, token["access_token"], home)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """Stop the stack the way Ctrl-C does, then kill whatever is left: `airflow standalone` runs in
    a process group of its own, which a signal to `mlbatch up`'s group alone would leave running."""
    family = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _, alive = psutil.wait_procs(family, timeout=10)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
