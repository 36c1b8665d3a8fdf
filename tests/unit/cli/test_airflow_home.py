"""The MLflow store made ready before the first step, quietly: a first `mlbatch demo` opens with its own lines."""
from __future__ import annotations

import os
import subprocess
import sys


def test_the_mlflow_tables_are_created_without_a_line_per_migration(tmp_path):
    env = {**os.environ, "MLBATCH_ARTIFACTS": str(tmp_path / "artifacts"), "AIRFLOW_HOME": str(tmp_path / "home"),
           "MLBATCH_TRACKING_MLFLOW": "true"}
    code = "import airflow\nfrom mlbatch.cli.airflow_home import prepare_tracking\nprepare_tracking()\n"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "artifacts" / "mlflow" / "mlflow.db").is_file()
    said = done.stdout + done.stderr
    assert "Running upgrade" not in said and "Creating initial MLflow database tables" not in said, said[-2000:]
