"""Batches end to end through real Airflow with `backend: docker`: every step a container of the worker image.

The image is the CPU worker built from this checkout's Dockerfile.worker (the `worker_image` fixture).
The example specs name `mlbatch-worker:cpu`; a test runs a copy of the spec whose defaults name the
built tag instead, so a developer's own `mlbatch-worker:cpu` is never retagged by the tests, and under
its own dag_id, so the local backend's run of the same example is no cache hit for it.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from mlbatch.cli.report import collect
from tests.integration.airflow_run import dags_test, migrate_db, write_batch

pytestmark = [pytest.mark.slow, pytest.mark.containers]

PROJECT = Path(__file__).resolve().parents[2]
ON_DOCKER = {"MLBATCH_BACKEND": "docker"}  # overrides the spec's default backend, as a user would


@pytest.fixture(scope="module", autouse=True)
def _db() -> None:
    migrate_db()


def _states(dag_id: str) -> dict[str, tuple[str, int]]:
    return {row.step: (row.state, row.try_number) for row in collect(dag_id).steps}


def _on_image(spec_text: str, image: str) -> str:
    return spec_text.replace("defaults:\n", f"defaults:\n  image: {image}\n", 1)


def _containers_left(client: Any, dag_id: str) -> list[Any]:
    return client.containers.list(all=True, filters={"label": [f"mlbatch.dag={dag_id}"]})


def test_churn_training_runs_every_step_in_a_container_of_the_worker_image(
        tmp_path: Path, worker_image: str, docker_client: Any) -> None:
    spec = (PROJECT / "dags" / "specs" / "churn_training.yaml").read_text()
    write_batch(tmp_path, "churn_docker", _on_image(spec, worker_image))
    result = dags_test(tmp_path, "churn_docker", env=ON_DOCKER)
    assert result.returncode == 0, result.output[-5000:]
    assert [state for state, _ in _states("churn_docker").values()] == ["success"] * 5
    by_step = {row.step: row.summary for row in collect("churn_docker").steps}
    assert by_step["train"]["shard_count"] == by_step["train_mlp"]["shard_count"] == 5
    assert by_step["score"]["counts"]["rows"] == by_step["features"]["counts"]["rows"] == 200000
    assert 0.7 < by_step["ensemble"]["metrics"]["auc"] < 0.99
    assert f"as containers of {worker_image} (1 vcpu, 3.0 GiB each)" in result.output  # train's 5 folds
    assert "[shard 4/5] started container" in result.output and "[worker] started container" in result.output
    assert "started pid" not in result.output  # no step ran as a local process
    assert _containers_left(docker_client, "churn_docker") == []


def test_a_step_over_its_memory_is_killed_by_the_kernel_while_its_siblings_succeed(
        tmp_path: Path, worker_image: str, docker_client: Any) -> None:
    write_batch(tmp_path, "docker_oom", _on_image(textwrap.dedent("""
        defaults:
          retries: 1
          retry_delay: 1s
          resources: {memory: 300Mi}
        steps:
          hog:
            run: check.memory
            params: {mib: 900, hold_seconds: 5}
          grows:
            run: check.memory
            params: {mib: 350, hold_seconds: 1}
            on_oom: {grow: 3, max: 900Mi}
          sibling:
            run: check.sleep
            params: {seconds: 1}
    """), worker_image))
    result = dags_test(tmp_path, "docker_oom", env=ON_DOCKER)
    assert result.returncode != 0
    states = _states("docker_oom")
    assert states["hog"] == ("failed", 1)  # oom without on_oom: no retry would fit either
    assert states["grows"] == ("success", 2)  # its second try ran with a 900 MiB limit
    assert states["sibling"][0] == "success"
    assert "killed by the kernel at its 300 MiB memory limit" in result.output
    assert "class: oom" in result.output and "900 MiB memory limit" in result.output
    assert _containers_left(docker_client, "docker_oom") == []
