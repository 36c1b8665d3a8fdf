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

    from mlbatch.run.factory import LOCAL_POOL
    from mlbatch.spec.lint import local_cpu_count

    home = home or Path(os.environ["AIRFLOW_HOME"])
    prepare_tracking()
    marker = home / READY
    if marker.is_file() and marker.read_text() == airflow_version:
        return
    home.mkdir(parents=True, exist_ok=True)
    print(f"Preparing the Airflow metadata DB in {home} (first use: about a minute) ...", flush=True)
    _run([airflow_command(), "db", "migrate"], home / "db-migrate.log")
    cpus = str(local_cpu_count())
    _run([airflow_command(), "pools", "set", LOCAL_POOL, cpus, "local mlbatch workers (one slot per CPU)"],
         home / "db-migrate.log")
    marker.write_text(airflow_version)


def _run(command: list[str], log_path: Path) -> None:
    with open(log_path, "a") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
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
