"""Exceptions a failed step try raises: Airflow retries one, not the other; both carry the details.

The alert callbacks read the failure class, reason and stderr tail from them, so the Slack
message says what the task log says.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from airflow.sdk.exceptions import AirflowFailException

from mlbatch.backends.failures import FailureClass


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
