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
