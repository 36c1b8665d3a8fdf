"""The same `@step` function in a container of the worker image (backend docker), through real Airflow.

The worker image holds workers/ only: the function's module lies under the artifact root, which every
step container sees read-only at its own path, and the step's `code=` puts that folder on the worker's
sys.path (a team builds its module into an image FROM the worker image instead). Without it, the image
cannot import the function: bad input, not retried, naming the function, the image and the fix.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from mlbatch.cli.report import collect
from tests.integration.airflow_run import dags_test, migrate_db
from workers import artifacts
from workers.python_call import read_result

pytestmark = [pytest.mark.slow, pytest.mark.containers]

STEPS = '''
from mlbatch.sdk import step


@step(image="IMAGE", code="CODE", shards=2, resources={"memory": "256Mi"})
def square(values: list, shard=None) -> dict:
    import sys
    mine = values[shard.index::shard.count]
    return {"squares": [v * v for v in mine], "mlbatch_installed": "mlbatch.sdk" in sys.modules and
            hasattr(sys.modules["mlbatch.sdk"], "dag_step")}


@step(image="IMAGE", backend="docker")
def not_in_the_image() -> int:
    return 1
'''

DAG = '''
from airflow.sdk import DAG

from dock_steps import FUNCTION

with DAG("DAG_ID", schedule=None, tags=["mlbatch"]) as dag:
    CALL
'''


@pytest.fixture(scope="module", autouse=True)
def _db() -> None:
    migrate_db()


def _write(tmp_path: Path, image: str, dag_id: str, call: str) -> dict[str, str]:
    code = Path(os.environ["MLBATCH_ARTIFACTS"]).resolve() / "sdk-code"
    code.mkdir(parents=True, exist_ok=True)
    (code / "dock_steps.py").write_text(STEPS.replace("IMAGE", image).replace("CODE", str(code)))
    dag = DAG.replace("DAG_ID", dag_id).replace("FUNCTION", call.split("(")[0]).replace("CALL", call)
    (tmp_path / f"{dag_id}.py").write_text(dag)
    return {"MLBATCH_BACKEND": "docker", "PYTHONPATH": os.pathsep.join([os.environ["PYTHONPATH"], str(code)])}


def test_a_step_function_runs_sharded_in_containers_of_the_worker_image_and_caches(
        tmp_path: Path, worker_image: str, docker_client: Any) -> None:
    env = _write(tmp_path, worker_image, "sdk_docker", "square([1, 2, 3, 4, 5])")
    first = dags_test(tmp_path, "sdk_docker", env=env)
    assert first.returncode == 0, first.output[-5000:]
    assert "[shard 1/2] started container" in first.output and "started pid" not in first.output
    root = os.environ["MLBATCH_ARTIFACTS"]
    output = artifacts.read_json(artifacts.latest_pointer_uri(root, "sdk_docker", "square"))["uri"]
    # the image has no mlbatch: its module imported through the worker's stand-in `mlbatch.sdk`
    assert read_result(output) == [{"squares": [1, 9, 25], "mlbatch_installed": False},
                                   {"squares": [4, 16], "mlbatch_installed": False}]
    second = dags_test(tmp_path, "sdk_docker", env=env)
    assert second.returncode == 0 and "cache hit" in second.output, second.output[-5000:]
    assert docker_client.containers.list(all=True, filters={"label": ["mlbatch.dag=sdk_docker"]}) == []


def test_a_function_the_image_cannot_import_fails_once_as_bad_input_naming_image_and_fix(
        tmp_path: Path, worker_image: str) -> None:
    env = _write(tmp_path, worker_image, "sdk_docker_missing", "not_in_the_image()")
    result = dags_test(tmp_path, "sdk_docker_missing", env=env)
    assert result.returncode != 0
    assert (f"cannot import function dock_steps:not_in_the_image in image {worker_image}: "
            "ModuleNotFoundError: No module named 'dock_steps'") in result.output, result.output[-5000:]
    assert "FROM the worker image" in result.output
    [row] = collect("sdk_docker_missing").steps
    assert (row.state, row.try_number) == ("failed", 1)  # bad input: never retried
