"""Under `mlbatch compose up` a docker step's containers see only the artifact folder of the scheduler's
paths: lint and the docker backend refuse a local source elsewhere, naming the step, the param and the fix."""
from __future__ import annotations

import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from mlbatch.backends.shared_paths import SHARED_ENV, unshared_source_problem
from mlbatch.spec.lint import lint_file

SPEC = """
    defaults: {backend: docker}
    steps:
      features: {run: features.synthetic, params: {source: SOURCE}}
"""


def _lint(tmp_path: Path, source: str) -> list[str]:
    spec = tmp_path / "specs" / "compose_batch.yaml"
    spec.parent.mkdir(exist_ok=True)
    spec.write_text(textwrap.dedent(SPEC.replace("SOURCE", source)))
    return [str(p) for p in lint_file(spec, cpu_count=64) if p.severity == "error"]


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The artifact folder compose shares with the host's engine (docker-compose.yaml sets the env)."""
    folder = tmp_path / "artifacts"
    folder.mkdir()
    monkeypatch.setenv(SHARED_ENV, str(folder))
    return folder


def test_a_local_source_outside_the_shared_folder_is_a_lint_error_naming_spec_step_param_and_fix(tmp_path, shared):
    [error] = _lint(tmp_path, "/opt/airflow/data/churn.csv")
    assert "compose_batch.yaml:4: step 'features', field 'params.source': " in error
    assert "params.source = '/opt/airflow/data/churn.csv' is a local file the step's containers cannot see" in error
    assert f"put the file under {shared}" in error and "s3:// URI" in error


def test_a_relative_source_is_where_the_task_runs_which_the_host_does_not_share(tmp_path, shared, monkeypatch):
    monkeypatch.chdir(tmp_path)
    [error] = _lint(tmp_path, "data/churn.csv")
    assert "params.source = 'data/churn.csv'" in error


def test_a_source_under_the_shared_folder_or_in_an_object_store_is_fine(tmp_path, shared):
    assert _lint(tmp_path, str(shared / "sources" / "churn.csv")) == []
    assert _lint(tmp_path, f"file://{shared}/churn.csv") == []


def test_where_the_engine_shares_every_path_nothing_is_checked(tmp_path, monkeypatch):
    monkeypatch.delenv(SHARED_ENV, raising=False)
    assert _lint(tmp_path, "/opt/airflow/data/churn.csv") == []


def _request(source: str) -> Any:
    from mlbatch.backends.jobs import JobRequest
    from workers.wire import run_command, step_request

    step = step_request(worker="features.synthetic", params={"rows": 10, "seed": 1, "source": source}, inputs={},
                        output="/tmp/unused", shard_count=1)
    return JobRequest(name="compose_batch.features", image="mlbatch-worker:cpu", command=run_command(step),
                      identity=uuid.uuid4().hex)


def test_the_backend_checks_it_too_at_run_time(shared):
    problem = unshared_source_problem(_request("/opt/airflow/data/churn.csv"))
    assert problem.startswith("step 'compose_batch.features': params.source = '/opt/airflow/data/churn.csv' is a")
    assert f"put the file under {shared}" in problem
    assert unshared_source_problem(_request(str(shared / "churn.csv"))) is None
    assert unshared_source_problem(_request("s3://bucket/churn.csv")) is None  # reached over the network


def test_the_docker_backend_fails_the_step_at_once_before_any_container(shared, docker_client):
    from mlbatch.backends.docker import DockerBackend
    from mlbatch.settings import SettingsError

    with pytest.raises(SettingsError, match="params.source = '/opt/airflow/data/churn.csv'"):
        DockerBackend(log=lambda line: None).run(_request("/opt/airflow/data/churn.csv"))
