"""Exceptions a failed step try raises: Airflow retries one, not the other; both carry the details.

The alert callbacks read the failure class, reason and stderr tail from them, so the Slack
message says what the task log says.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, NoReturn

from airflow.sdk.exceptions import AirflowFailException

from mlbatch.backends.failures import FailureClass

if TYPE_CHECKING:
    from mlbatch.backends.jobs import JobResult

FAILURE_XCOM_KEY = "mlbatch_failure"  # a failed try's record for the run summary: it has no return value


@dataclass(frozen=True)
class FailureDetails:
    failure: FailureClass
    reason: str
    shard: str = "0/1"
    stderr_tail: tuple[str, ...] = field(default_factory=tuple)
    next_step: str | None = None  # what to do about it, when the class's usual advice does not fit

    @property
    def summary(self) -> str:
        return f"{self.failure.value}: {self.reason}"


class StepFailed(Exception):
    """A failed try that Airflow may retry (timeout, infrastructure, code_error, oom with on_oom)."""

    def __init__(self, details: FailureDetails) -> None:
        super().__init__(details.summary)
        self.details = details


class StepFailedFast(AirflowFailException):
    """A failed try that no retry can fix (bad input, out of memory): Airflow skips the retries."""

    def __init__(self, details: FailureDetails) -> None:
        super().__init__(details.summary)
        self.details = details


def raise_for(result: JobResult, *, redact: Callable[[str], str], grew_memory: Callable[[], bool]) -> NoReturn:
    """The exception for a failed try: fail fast when no retry can help, else a retryable failure.

    `grew_memory` is asked only for an out-of-memory failure: True when on_oom gave the next
    try a larger budget, which makes the failure worth a retry.
    """
    failure = result.first_failure
    if failure is None:  # shards left unstarted without a failure of their own
        raise StepFailed(FailureDetails(FailureClass.infrastructure, f"shards {result.not_started} did not start"))
    # The backend has already logged each failed shard's block (class, exit, reason, stderr).
    details = FailureDetails(failure.failure, redact(failure.reason), f"{failure.index}/{result.shard_count}",
                             tuple(redact(line) for line in failure.stderr_tail[-10:]))
    if failure.failure is FailureClass.oom:
        if grew_memory():
            raise StepFailed(details)
        raise StepFailedFast(with_oom_fix(details, failure.peak_rss_mib, result.memory_mib))
    if not failure.retryable:
        raise StepFailedFast(details)  # bad input, a missing image: a retry would fail the same way
    raise StepFailed(details)


def with_oom_fix(details: FailureDetails, peak_mib: float | None, budget_mib: float | None) -> FailureDetails:
    """An OOM's details with its shard and the spec change that fixes it in the reason and next step."""
    from dataclasses import replace

    from mlbatch.run.oom_hint import oom_fix

    fix = oom_fix(peak_mib, budget_mib, details.shard)
    return replace(details, reason=f"{details.reason}; fix: {fix}", next_step=fix.split(": ", 1)[1])


def failure_record(details: FailureDetails, result: JobResult) -> dict[str, Any]:
    """What the run summary shows of a failed try: its class, shard, peak against budget and the fix.

    Small and nothing secret (it is an XCom): no reason or stderr, the fix is built from numbers.
    """
    failed = result.first_failure
    peak = failed.peak_rss_mib if failed is not None and failed.peak_rss_mib else None
    return {"failure": details.failure.value, "shard": details.shard,
            "peak_rss_mib": round(peak, 1) if peak else None, "memory_mib": result.memory_mib,
            "fix": details.next_step}


def unwritten_failure(unwritten: list[int], output: str) -> StepFailed:
    """Workers that said "succeeded" yet committed nothing (wrong artifact root, no write permission)."""
    return StepFailed(FailureDetails(FailureClass.code_error, (
        f"the workers of shards {unwritten[:20]} ended successfully but committed no manifest under "
        f"{output}: check that the artifact root is reachable and writable from the worker")))
