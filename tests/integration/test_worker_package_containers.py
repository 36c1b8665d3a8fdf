"""The example worker package's worker (quality.nulls) end to end in real containers of a team image.

The team image is examples/worker-package/Dockerfile built FROM the worker image of this checkout
(tests/containers/team_image.py). quality.nulls is not in the worker image, so a step that succeeds
ran in the team image. The batch runs through real Airflow on the docker backend and on the Batch
and ECS stand-ins (which run the team image under its registry name), its gate reads the package's
metric, and a rerun is a cache hit. The Airflow side finds the package as a user's install would
(tests/worker_packages.py): lint and the cache key read its params model and its code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.containers.team_image import ensure_team_image
from tests.integration.airflow_run import dags_test, migrate_db, write_batch
from tests.integration.aws_stand_in import REGION
from tests.integration.conftest import aws_env
from tests.worker_packages import example_installed

pytestmark = [pytest.mark.slow, pytest.mark.containers]

# what the spec names on AWS: the team's own repository, which the stand-in maps to the local build
TEAM_REFERENCE = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/mlbatch-quality:0.1.0"
BATCH = """
    defaults: {image: IMAGE, retries: 0, resources: {vcpu: 1, memory: 2Gi}, timeout: 10m}
    steps:
      features: {run: features.synthetic, params: {rows: 300}}
      nulls:
        run: quality.nulls
        needs: [features]
        params: {columns: [tenure_months, monthly_charges]}
        gate: {metric: null_share, max: 0.5}
"""


@pytest.fixture(scope="module", autouse=True)
def _example() -> Any:
    with example_installed():  # here and in the Airflow processes the tests start
        migrate_db()
        yield


@pytest.fixture(scope="module")
def team_image(docker_client: Any, base_image: str, worker_image: str) -> str:
    try:
        return ensure_team_image(docker_client, worker_image, base_image)
    except RuntimeError as exc:  # the build's log tail says why
        pytest.fail(str(exc), pytrace=False)


def _runs_gated_then_hits_the_cache(dags: Path, dag_id: str, env: dict[str, str]) -> str:
    first = dags_test(dags, dag_id, env=env)
    assert first.returncode == 0, first.output[-5000:]
    assert "gate passed: null_share = " in first.output, first.output[-3000:]
    assert "quality.nulls: 300 rows, worst column" in first.output  # the package's own log line, from its container
    second = dags_test(dags, dag_id, env=env)
    assert second.returncode == 0, second.output[-5000:]
    assert second.output.count("cache hit") >= 2, second.output[-3000:]
    assert "gate passed: null_share = " in second.output  # read again from the cached output's metrics
    return first.output


def test_the_package_worker_runs_in_the_team_image_on_the_docker_backend(
        tmp_path: Path, team_image: str, docker_client: Any) -> None:
    write_batch(tmp_path, "quality_docker", BATCH.replace("IMAGE", team_image))
    output = _runs_gated_then_hits_the_cache(tmp_path, "quality_docker", {"MLBATCH_BACKEND": "docker"})
    assert "started pid" not in output  # no step ran as a local process
    assert docker_client.containers.list(all=True, filters={"label": ["mlbatch.dag=quality_docker"]}) == []


@pytest.mark.parametrize("backend", ["batch", "ecs"])
def test_the_package_worker_runs_in_the_team_image_on_the_aws_stand_in(
        tmp_path: Path, team_image: str, aws: Any, backend: str) -> None:
    from mlbatch.cli.deploy import deploy

    aws.images[TEAM_REFERENCE] = team_image
    dag_id = f"quality_{backend}"
    write_batch(tmp_path, dag_id, BATCH.replace("IMAGE", TEAM_REFERENCE))
    assert deploy(tmp_path / "specs", None, dry_run=False, out=lambda line: None) == 0  # the team image's definitions
    started = len(aws.runner.started)
    _runs_gated_then_hits_the_cache(tmp_path, dag_id, aws_env(aws, MLBATCH_BACKEND=backend))
    assert len(aws.runner.started) - started == 2  # features and nulls, each once: the rerun started nothing
