"""One rule for AWS calls that come back throttled: back off and call again.

The delay is the Amazon provider's (BatchClientHook.exponential_delay: exponential with
random jitter, at most 10 minutes), the same rule the provider's own describe loop uses,
for every service we call. botocore's retry modes only cover part of it: SubmitJob and
RunTask rate limits come back as errors after botocore has given up.
"""
from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")

THROTTLED_CODES = ("TooManyRequestsException", "ThrottlingException")
MAX_ATTEMPTS = 6  # a call in the task: 5 backoffs (a minute or so) before the error is the step's


def is_throttled(error: BaseException) -> bool:
    """A botocore ClientError saying the account's rate limit was hit."""
    response = getattr(error, "response", None) or {}
    return response.get("Error", {}).get("Code") in THROTTLED_CODES


def backoff_s(attempt: int) -> float:
    """Seconds to wait after the attempt-th throttled call (1, 2, ...)."""
    from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook

    return BatchClientHook.exponential_delay(attempt)


def call_with_backoff(call: Callable[[], T], *, sleep: Callable[[float], None],
                      attempts: int = MAX_ATTEMPTS) -> T:
    """call(), again after a backoff while it is throttled; any other error (or the last throttle) raises."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as error:  # botocore's ClientError, imported lazily with the hooks
            if not is_throttled(error) or attempt == attempts:
                raise
            sleep(backoff_s(attempt))
    raise AssertionError("unreachable")
