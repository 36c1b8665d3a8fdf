"""`mlbatch up`: Airflow's own web UI, scheduler, dag-processor and triggerer on 127.0.0.1:8080.

Runs `airflow standalone` in its own process group so that Ctrl-C stops all of it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path


def _password(home: Path) -> str | None:
    path = home / "simple_auth_manager_passwords.json.generated"
    try:
        return json.loads(path.read_text()).get("admin")
    except (OSError, ValueError):
        return None


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _stop_on(signum: int, _frame) -> None:
    raise KeyboardInterrupt


def main(port: int = 8080) -> int:
    # Ctrl-C (or a SIGTERM from a process manager) stops everything, even where SIGINT
    # was inherited as ignored (background jobs of a non-interactive shell).
    signal.signal(signal.SIGINT, _stop_on)
    signal.signal(signal.SIGTERM, _stop_on)
    from mlbatch.cli.airflow_home import airflow_command, prepare
    from mlbatch.cli.project import find_root

    home = Path(os.environ["AIRFLOW_HOME"])
    prepare(home)
    env = dict(os.environ)
    env.setdefault("AIRFLOW__API__PORT", str(port))
    env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")
    # Tasks reach the API server through this URL: it must follow the port.
    env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"http://127.0.0.1:{port}/execution/")
    env.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    airflow = airflow_command()
    # standalone starts its parts as `airflow ...` from PATH: the one it is must come first.
    env["PATH"] = os.pathsep.join([str(Path(airflow).parent), env.get("PATH", "")])
    # from the project root, like `mlbatch demo`: a relative path in a spec means the same in both
    proc = subprocess.Popen([airflow, "standalone"], env=env, start_new_session=True, cwd=find_root(),
                            stdout=open(home / "standalone.log", "a"), stderr=subprocess.STDOUT)
    print(f"Starting Airflow (log: {home / 'standalone.log'}) ...", flush=True)
    try:
        for _ in range(180):
            if proc.poll() is not None:
                print(f"Airflow exited early; see {home / 'standalone.log'}")
                return proc.returncode or 1
            if _password(home) and _answers(f"http://127.0.0.1:{port}/api/v2/version"):
                break
            time.sleep(1)
        else:
            print(f"Airflow did not answer on port {port} within 3 minutes; see {home / 'standalone.log'}")
        print(f"\n  Airflow UI: http://127.0.0.1:{port}\n  user: admin   password: {_password(home)}\n"
              "  Ctrl-C stops everything.\n", flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
