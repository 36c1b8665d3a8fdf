"""The project's Airflow metadata DB, made ready on first use: `mlbatch demo` and `mlbatch up`
work in a fresh clone without a separate set-up step."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

READY = ".mlbatch-db-ready"  # written after a successful migration, holding the Airflow version


def airflow_command() -> str:
    """The `airflow` of this interpreter's environment, else the first on PATH (a user install)."""
    import shutil

    beside = Path(sys.executable).with_name("airflow")
    return str(beside) if beside.exists() else shutil.which("airflow") or str(beside)


def prepare(home: Path | None = None) -> None:
    """Migrate the metadata DB once per Airflow version and size the local workers' pool to this machine.

    Raises RuntimeError with the tail of Airflow's output when either fails.
    """
    from airflow import __version__ as airflow_version

    home = home or Path(os.environ["AIRFLOW_HOME"])
    prepare_tracking()
    marker = home / READY
    if marker.is_file() and marker.read_text() == airflow_version:
        return
    home.mkdir(parents=True, exist_ok=True)
    print(f"Preparing the Airflow metadata DB in {home} (first use: about a minute) ...", flush=True)
    migrate(home)
    marker.write_text(airflow_version)


def migrate(home: Path, env: dict[str, str] | None = None, slots: int | None = None) -> None:
    """`airflow db migrate` and the local workers' pool (`slots`, default one per CPU); log in `home`."""
    from mlbatch.run.factory import LOCAL_POOL
    from mlbatch.spec.lint import local_cpu_count

    log = home / "db-migrate.log"
    run_logged([airflow_command(), "db", "migrate"], log, env)
    slots = slots if slots is not None else local_cpu_count()
    run_logged([airflow_command(), "pools", "set", LOCAL_POOL, str(slots), "local mlbatch workers (one slot per CPU)"],
               log, env)


def run_logged(command: list[str], log_path: Path, env: dict[str, str] | None = None,
               timeout: float | None = None) -> None:
    """Run `command` with its output appended to `log_path`; RuntimeError with the log's tail when it fails."""
    with open(log_path, "a") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout)
    if done.returncode != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-20:])
        raise RuntimeError(f"`{' '.join(command[1:])}` failed (exit {done.returncode}); log {log_path}:\n{tail}")


def prepare_tracking() -> None:
    """The default MLflow store's tables, created once here rather than by the first model step."""
    from mlbatch.run.paths import artifact_root
    from mlbatch.settings import load_settings
    from mlbatch.tracking.steps import prepare_store

    if load_settings().tracking.mlflow:  # MLBATCH_TRACKING_MLFLOW=false turns it off
        import logging

        # creating the tables logs one INFO line per migration (about 60): a newcomer's first
        # `mlbatch demo` would open with them
        quiet = [logging.getLogger(name) for name in ("mlflow", "alembic")]
        levels = [logger.level for logger in quiet]
        for logger in quiet:
            logger.setLevel(logging.WARNING)
        try:
            prepare_store(artifact_root())
        finally:
            for logger, level in zip(quiet, levels):
                logger.setLevel(level)
