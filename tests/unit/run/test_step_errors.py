"""Which failed tries Airflow may retry: the class decides, unless the backend knows no retry can help."""
from __future__ import annotations

import pytest

from mlbatch.backends.failures import FailureClass
from mlbatch.backends.jobs import JobResult, ShardOutcome
from mlbatch.run.step_errors import StepFailed, StepFailedFast, raise_for


def _result(**outcome: object) -> JobResult:
    return JobResult(name="b.s", shard_count=1, outcomes=[ShardOutcome(index=0, **outcome)])


def test_a_missing_image_fails_fast_though_infrastructure_is_retried() -> None:
    missing = _result(failure=FailureClass.infrastructure, reason="image 'w:cpu' is not on the Docker host",
                      final=True)
    with pytest.raises(StepFailedFast, match="infrastructure: image 'w:cpu'"):
        raise_for(missing, redact=str, grew_memory=lambda: False)
    assert "retryable: no" in missing.failure_report()
    flaky = _result(failure=FailureClass.infrastructure, reason="the engine went away")
    with pytest.raises(StepFailed):
        raise_for(flaky, redact=str, grew_memory=lambda: False)
    assert "retryable: yes" in flaky.failure_report()


def test_the_failure_record_holds_the_shard_the_peak_against_the_budget_and_the_oom_fix() -> None:
    from mlbatch.run.step_errors import failure_record

    oom = JobResult(name="b.s", shard_count=5, memory_mib=150, outcomes=[
        ShardOutcome(index=2, failure=FailureClass.oom, reason="peak 211 MiB > budget 150 MiB",
                     peak_rss_mib=211.43, stderr_tail=["token=s3cr3t"])])
    with pytest.raises(StepFailedFast) as failed:
        raise_for(oom, redact=str, grew_memory=lambda: False)
    assert failure_record(failed.value.details, oom) == {
        "failure": "oom", "shard": "2/5", "peak_rss_mib": 211.4, "memory_mib": 150,
        "fix": "set resources.memory: 320Mi in this step, or on_oom: {grow: 2, max: 320Mi} to retry with twice "
               "the memory"}
