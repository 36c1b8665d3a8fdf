"""Test-wide environment: a private Airflow home, artifact root, slot directory and spec index.

Set before anything imports Airflow, which reads its configuration at import time.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

_ROOT = Path(tempfile.mkdtemp(prefix="mlbatch-tests-"))
PROJECT = Path(__file__).resolve().parents[1]

os.environ.update({
    "AIRFLOW_HOME": str(_ROOT / "airflow_home"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
    "MLBATCH_ARTIFACTS": str(_ROOT / "artifacts"),
    "MLBATCH_LOCAL_SLOTS_DIR": str(_ROOT / "slots"),
    "MLBATCH_SPEC_INDEX_DIR": str(_ROOT / "spec-index"),
    "MLBATCH_SETTINGS": str(_ROOT / "mlbatch.toml"),  # none: a developer's own settings never leak into tests
    # MLflow costs each model step a couple of seconds: on only where a test checks it (test_ml_e2e)
    "MLBATCH_TRACKING_MLFLOW": "false",
    "PYTHONPATH": os.pathsep.join([str(PROJECT / "plugins"), str(PROJECT)]),
})
os.environ.pop("MLBATCH_BACKEND", None)

from tests.enterable_temp import let_workers_run_this_python, make_enterable, patch_pytest_temp_dirs  # noqa: E402

make_enterable(_ROOT)  # root's local workers run as another uid: it must reach the artifact root
patch_pytest_temp_dirs()
let_workers_run_this_python()

# The Docker engine and the images built from this checkout, for every test directory
from tests.containers.fixtures import (  # noqa: E402,F401
    base_image, docker_client, mark_container_tests, run_container_modules_last, worker_image)


def pytest_collection_modifyitems(config, items):
    mark_container_tests(items)
    run_container_modules_last(items)
