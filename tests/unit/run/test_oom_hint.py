"""An out-of-memory step says which shard, its peak and budget, and the spec change that fixes it."""
from __future__ import annotations

import pytest

from mlbatch.backends.failures import FailureClass
from mlbatch.backends.jobs import JobResult, ShardOutcome
from mlbatch.run.oom_hint import suggested_memory
from mlbatch.run.step_errors import StepFailed, StepFailedFast, raise_for
from mlbatch.spec.models import OnOom
from mlbatch.spec.units import parse_memory


def oom_result() -> JobResult:
    ok = ShardOutcome(index=0, exit_code=0, peak_rss_mib=120.0)
    oom = ShardOutcome(index=2, signal=9, peak_rss_mib=211.0, failure=FailureClass.oom,
                       reason="peak 211 MiB > budget 150 MiB")
    return JobResult(name="data", shard_count=5, memory_mib=150, outcomes=[ok, oom])


def test_the_failure_names_the_shard_and_the_fix():
    with pytest.raises(StepFailedFast) as info:
        raise_for(oom_result(), redact=str, grew_memory=lambda: False)
    details = info.value.details
    assert str(info.value) == ("oom: peak 211 MiB > budget 150 MiB; fix: shard 2/5: set resources.memory: 320Mi in "
                               "this step, or on_oom: {grow: 2, max: 320Mi} to retry with twice the memory")
    assert details.shard == "2/5"
    assert details.next_step == "set resources.memory: 320Mi in this step, or on_oom: {grow: 2, max: 320Mi} to retry " \
                                "with twice the memory"


def test_a_step_that_grows_on_oom_retries_without_a_fix():
    with pytest.raises(StepFailed) as info:
        raise_for(oom_result(), redact=str, grew_memory=lambda: True)
    assert str(info.value) == "oom: peak 211 MiB > budget 150 MiB"


@pytest.mark.parametrize("peak, budget, memory", [(211, 150, "320Mi"), (1300, 1024, "2Gi"), (None, 512, "1Gi"),
                                                  (20, 16, "64Mi"), (3000, 2048, "4.5Gi")])
def test_the_suggestion_holds_the_peak_and_is_valid_in_a_spec(peak, budget, memory):
    assert suggested_memory(peak, budget) == memory
    assert parse_memory(memory) >= (peak or budget) and OnOom(grow=2, max=memory).grow == 2
