"""The step operator's orchestration with the real local backend: compute once, reuse, resume, fail right.

Each test runs real worker processes (check.noop, check.fail) under an artifact root of its own;
the Airflow context is the part of it the operator reads (the task instance's XCom and try number).
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from mlbatch.run.operator import StepOperator
from mlbatch.run.step_errors import StepFailed, StepFailedFast
from mlbatch.spec.models import BatchSpec
from workers.step_output import StepOutput


@pytest.fixture(autouse=True)
def artifacts(tmp_path, monkeypatch):
    root = tmp_path / "artifacts"
    monkeypatch.setenv("MLBATCH_ARTIFACTS", str(root))
    return root


def operator(run: str, params: dict[str, Any] | None = None, **settings: Any) -> StepOperator:
    spec = BatchSpec.model_validate({"dag_id": "op", "steps": {"step": {"run": run, "params": params or {},
                                                                      "retries": 0, **settings}}})
    step = spec.resolved_steps()["step"]
    return StepOperator(task_id="step", batch_id="op", step=step)


def context(try_number: int = 1, run_id: str = "manual__1", conf: dict[str, Any] | None = None) -> dict[str, Any]:
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(try_number=try_number, xcom_pull=lambda task_ids: None, pushed=pushed,
                         xcom_push=lambda key, value: pushed.update({key: value}))
    return {"ti": ti, "run_id": run_id, "dag_run": SimpleNamespace(conf=conf or {})}


def test_a_step_is_computed_committed_and_then_reused_by_the_next_run():
    first = operator("check.noop", shards=2).execute(context())
    assert first["cache_hit"] is False
    manifest = StepOutput(first["uri"]).manifest()
    assert manifest["shard_count"] == 2 and manifest["run"]["run_id"] == "manual__1"
    assert manifest["run"]["shards_run"] == [0, 1] and manifest["run"]["usage"]["backend"] == "local"

    second = operator("check.noop", shards=2).execute(context(run_id="manual__2"))
    assert second["cache_hit"] is True and second["uri"] == first["uri"] and second["key"] == first["key"]


def test_a_retry_runs_only_the_shards_that_did_not_commit():
    failing = operator("check.fail", {"fail_tries": 1, "fail_shards": [1]}, shards=3)
    with pytest.raises(StepFailed, match="code_error: exit code 1: RuntimeError: requested failure"):
        failing.execute(context(try_number=1))
    summary = operator("check.fail", {"fail_tries": 1, "fail_shards": [1]}, shards=3).execute(context(try_number=2))
    manifest = StepOutput(summary["uri"]).manifest()
    rerun = manifest["run"]["shards_run"]
    assert 1 in rerun and 0 not in rerun  # shard 0 committed on the first try (shard 2 did if it started)
    assert rerun == [shard["shard_index"] for shard in manifest["shards"] if shard["try_number"] == 2]


def test_bad_input_fails_the_step_without_a_retry_and_leaves_its_record_for_the_run_summary():
    failing = context()
    with pytest.raises(StepFailedFast, match="bad_input"):
        operator("check.fail", {"bad_input": True, "message": "column churn is missing"}).execute(failing)
    record = failing["ti"].pushed["mlbatch_failure"]
    assert record["failure"] == "bad_input" and record["shard"] == "0/1" and record["fix"] is None
    assert record["memory_mib"] == 2048


def test_a_cache_refresh_recomputes_every_shard():
    first = operator("check.noop", shards=2).execute(context())
    refreshed = operator("check.noop", shards=2).execute(context(run_id="manual__2", conf={"cache": "refresh"}))
    assert refreshed["cache_hit"] is False and refreshed["uri"] == first["uri"]
    assert StepOutput(refreshed["uri"]).manifest()["run"]["run_id"] == "manual__2"


def test_a_bad_cache_mode_fails_at_once_naming_the_step():
    with pytest.raises(AirflowFailException, match="step step: the run conf's 'cache' is 'sometimes'"):
        operator("check.noop").execute(context(conf={"cache": "sometimes"}))


def test_a_backend_that_cannot_see_this_disk_fails_before_anything_is_submitted(artifacts):
    with pytest.raises(AirflowFailException, match="cannot see this machine's disk") as failed:
        operator("check.noop", backend="batch").execute(context())
    assert str(artifacts) in str(failed.value)
    assert not any(artifacts.rglob("manifest.json"))
