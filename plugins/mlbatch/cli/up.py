"""`mlbatch up`: Airflow's own web UI, scheduler, dag-processor and triggerer on 127.0.0.1:8080,
and MLflow's UI on 127.0.0.1:5000 for the project's tracking store (cli.mlflow_ui).

Runs `airflow standalone` in its own process group so that Ctrl-C stops all of it. With
`--postgres` the metadata DB is a PostgreSQL cluster of its own under AIRFLOW_HOME (as in
production and docker-compose.yaml) instead of SQLite; it stops with the stack.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from mlbatch.cli.postgres import PostgresUnavailable

if TYPE_CHECKING:
    from mlbatch.cli.postgres import LocalPostgres


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


def _on_postgres(home: Path, env: dict[str, str]) -> LocalPostgres:
    """Start the project's own PostgreSQL (port kept beside it), migrate it, create the local pool."""
    from mlbatch.cli.airflow_home import migrate, prepare_tracking
    from mlbatch.cli.postgres import LocalPostgres, free_port

    port_file = home / "postgres.port"
    port = int(port_file.read_text()) if port_file.exists() else free_port()
    port_file.write_text(str(port))
    cluster = LocalPostgres(home / "postgres", port)
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = cluster.start()
    env.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    prepare_tracking()
    print(f"PostgreSQL on 127.0.0.1:{port} (data: {cluster.data_dir}); migrating the metadata DB ...", flush=True)
    migrate(home, env, slots=int(float(env.get("MLBATCH_LOCAL_VCPU") or os.cpu_count() or 1)))
    return cluster


def main(port: int = 8080, postgres: bool = False, mlflow_port: int = 5000) -> int:
    # Ctrl-C (or a SIGTERM from a process manager) stops everything, even where SIGINT
    # was inherited as ignored (background jobs of a non-interactive shell).
    signal.signal(signal.SIGINT, _stop_on)
    signal.signal(signal.SIGTERM, _stop_on)
    from mlbatch.cli.airflow_home import airflow_command, prepare
    from mlbatch.cli.project import find_root
    from mlbatch.cli.root_workers import let_local_workers_in

    home = Path(os.environ["AIRFLOW_HOME"])
    if not postgres:
        prepare(home)  # the SQLite DB; --postgres migrates its own cluster below
    let_local_workers_in()
    env = dict(os.environ)
    env.setdefault("AIRFLOW__API__PORT", str(port))
    env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")
    # Tasks reach the API server through this URL: it must follow the port.
    env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"http://127.0.0.1:{port}/execution/")
    env.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    # standalone starts every part at once: after a restart, a step whose job ended meanwhile resumes
    # at once and may call the API server before it answers (5 tries, ~15 s, by default).
    env.setdefault("AIRFLOW__WORKERS__EXECUTION_API_RETRIES", "10")
    try:
        cluster = _on_postgres(home, env) if postgres else None
    except PostgresUnavailable as error:
        print(f"mlbatch up --postgres: {error}")
        return 1
    except RuntimeError as error:  # migrate's: the failing command and its log's tail
        print(f"mlbatch up --postgres: {error}")
        return 1
    from mlbatch.cli import mlflow_ui

    tracking = mlflow_ui.start(mlflow_port, env, open(home / "mlflow_ui.log", "a"))
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
        mlflow_line = f"  MLflow UI:  {env[mlflow_ui.UI_ENV]}  (log: {home / 'mlflow_ui.log'})\n" if tracking else ""
        print(f"\n  Airflow UI: http://127.0.0.1:{port}\n  user: admin   password: {_password(home)}\n"
              f"{mlflow_line}  Ctrl-C stops everything.\n", flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if tracking is not None and tracking.poll() is None:
            os.killpg(tracking.pid, signal.SIGTERM)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if cluster is not None:
            cluster.stop()
