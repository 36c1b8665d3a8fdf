"""Airflow's own dag-processor over a folder, and the parse time it records for each file.

`airflow dag-processor --num-runs N` parses every file of the folder N times and exits; after
each parse it stores how long the file took in the metadata DB (`dag.last_parse_duration`, what
the UI shows): from forking the parse process to the manager collecting its serialized DAGs.
The DB is a private SQLite file; min_file_process_interval 0 starts each pass right away.
"""
from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from mlbatch.cli.airflow_home import run_logged

PASSES = 2  # the figures kept are the second pass's: the first also writes each loader's own bytecode


def parse_durations(dags_dir: Path, home: Path, airflow: str, passes: int = PASSES) -> tuple[dict[str, float], float]:
    """{file name: seconds of its last parse} for every DAG in `dags_dir`, and the wall time of all passes."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_dir),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "0",
    }
    run_logged([airflow, "db", "migrate"], home / "db-migrate.log", env, timeout=600)
    began = time.perf_counter()
    run_logged([airflow, "dag-processor", "--num-runs", str(passes)], home / "dag-processor.log", env, timeout=1800)
    wall = time.perf_counter() - began
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute("SELECT fileloc, last_parse_duration FROM dag WHERE last_parse_duration IS NOT NULL")
        durations = {Path(fileloc).name: seconds for fileloc, seconds in rows}
    return durations, wall
