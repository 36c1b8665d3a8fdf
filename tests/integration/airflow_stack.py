"""A real Airflow stack for a test module: `python -m mlbatch up` (api-server, scheduler,
dag-processor, triggerer) on a free port, its own home, and a dags folder of the test's choosing.

Its metadata DB is a throwaway PostgreSQL cluster with the LocalExecutor running several tasks
at once: the same database and executor as docker-compose.yaml and a production Airflow."""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import psutil
import pytest
import yaml

from mlbatch.cli.postgres import LocalPostgres, PostgresUnavailable, free_port

PROJECT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
SMALLER = {  # (batch, step) -> params of the example batches in smaller_examples()
    ("churn_training", "features"): {"rows": 20000, "seed": 7},
    ("churn_training", "train"): {"max_iter": 50},
    ("churn_training", "train_mlp"): {"hidden": [32], "epochs": 3, "batch_size": 1024},
    ("churn_scoring", "features"): {"rows": 5000, "seed": 11},
}


@dataclass
class AirflowStack:
    proc: subprocess.Popen
    port: int
    password: str  # of the user admin, for the UI's login page
    token: str  # a bearer token of admin, for the REST API
    home: Path
    env: dict[str, str] = field(repr=False)  # its AIRFLOW_HOME, dags folder, ... (and any secrets)

    @property
    def database(self) -> str:
        """The SQLAlchemy URL of its metadata DB."""
        return self.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, method: str, path: str, body: dict | None = None) -> Any:
        return http(method, self.url + path, body, self.token)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """`airflow ARGS...` against this stack, as a user in its project would run it."""
        return subprocess.run([AIRFLOW, *args], env=self.env, cwd=PROJECT, capture_output=True, text=True, timeout=120)


def http(method: str, url: str, body: dict | None = None, token: str | None = None, timeout_s: float = 10) -> Any:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, method=method, headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return json.loads(response.read() or b"{}")


def wait_for(check: Callable[[], Any], within_s: float, every_s: float = 2.0) -> Any:
    """The first truthy value of `check`, or its last value after `within_s` (a bound, not a timing)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(every_s)
    return check()


def smaller_examples(dags: Path) -> None:
    """Copy the project's dags folder to `dags`, the example batches shrunk to seconds instead of
    minutes (schedules and gates as shipped; the model still passes its gate)."""
    shutil.copytree(PROJECT / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("churn_training", "churn_scoring"):
        path = dags / "specs" / f"{name}.yaml"
        spec = yaml.safe_load(path.read_text())
        for (batch, step), params in SMALLER.items():
            if batch == name:
                spec["steps"][step]["params"] = params
        for step in spec["steps"].values():  # every model step: 2 folds, all on the same folds
            if step["run"].startswith("train."):
                step["shards"] = 2
        path.write_text(yaml.safe_dump(spec, sort_keys=False))


@contextlib.contextmanager
def airflow_stack(root: Path, dags: Path, env: dict[str, str] | None = None) -> Iterator[AirflowStack]:
    """Start the stack with `dags` as its dags folder and `root/airflow_home`; kill it on exit."""
    with metadata_db() as database:
        with standalone(stack_env(root, dags, database, env)) as stack:
            yield stack


def stack_env(root: Path, dags: Path, database: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a stack in `root` on `database` (a second stack on the same ones: a restart)."""
    return {**os.environ, "AIRFLOW_HOME": str(root / "airflow_home"), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor", "AIRFLOW__CORE__PARALLELISM": "8", **(env or {})}


@contextlib.contextmanager
def metadata_db() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for the stack's metadata DB: its SQLAlchemy URL."""
    cluster = LocalPostgres.throwaway()
    try:
        database = cluster.start()
    except PostgresUnavailable as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the stack tests run on PostgreSQL: {error}")
        pytest.skip(f"the stack tests run on PostgreSQL: {error}")
    try:
        yield database
    finally:
        cluster.remove()


@contextlib.contextmanager
def standalone(env: dict[str, str]) -> Iterator[AirflowStack]:
    """`mlbatch up` with `env` (see stack_env) until the block ends; the database outlives it."""
    home = Path(env["AIRFLOW_HOME"])
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([AIRFLOW, "pools", "set", "mlbatch_local", "2", "local workers"], env=env, check=True,
                   capture_output=True)
    port = free_port()
    # no MLflow UI (tests/unit/cli/test_mlflow_ui.py serves it): a stack test looks at Airflow alone
    proc = subprocess.Popen([sys.executable, "-m", "mlbatch", "up", "--port", str(port), "--mlflow-port", "0"],
                            env=env, cwd=PROJECT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        banner = ""
        for line in proc.stdout:
            banner += line
            if "Ctrl-C" in line or "exited early" in line or "did not answer" in line:
                break
        found = re.search(r"user: admin\s+password: (\S+)", banner)
        assert found, f"the stack did not start:\n{banner}"
        password = found.group(1)
        token = http("POST", f"http://127.0.0.1:{port}/auth/token", {"username": "admin", "password": password})
        yield AirflowStack(proc, port, password, token["access_token"], home, env)
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
