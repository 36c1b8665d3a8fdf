"""Failure classes: how a worker's end becomes one class, one reason and one log block."""
from __future__ import annotations

import signal

import pytest

from mlbatch.backends.failures import (
    RETRYABLE,
    FailureClass,
    classify_exit,
    failure_block,
    format_duration,
    format_mib,
)


def test_exit_zero_is_success() -> None:
    assert classify_exit(0, None, peak_rss_mib=50, memory_mib=100) == (None, "")


def test_exit_65_is_bad_input_with_the_workers_reason() -> None:
    tail = ["loading features", "mlbatch-bad-input: input 'features' has no manifest at /tmp/x"]
    failure, reason = classify_exit(65, None, stderr_tail=tail)
    assert failure is FailureClass.bad_input
    assert reason == "input 'features' has no manifest at /tmp/x"


def test_exit_65_without_the_line_still_says_bad_input() -> None:
    failure, reason = classify_exit(65, None, stderr_tail=["something else"])
    assert failure is FailureClass.bad_input
    assert "65" in reason and "mlbatch-bad-input" in reason


def test_watchdog_kill_is_oom_with_peak_and_budget() -> None:
    failure, reason = classify_exit(
        None, signal.SIGKILL, watchdog_oom=True, peak_rss_mib=3.1 * 1024, memory_mib=2048
    )
    assert failure is FailureClass.oom
    assert reason == "peak 3.1 GiB > budget 2.0 GiB"


def test_timeout_names_the_limit() -> None:
    failure, reason = classify_exit(None, signal.SIGTERM, timed_out=True, timeout_s=1800)
    assert failure is FailureClass.timeout
    assert reason == "ran past its 30m timeout"


def test_cancelled_is_infrastructure() -> None:
    assert classify_exit(None, signal.SIGKILL, cancelled=True) == (FailureClass.infrastructure, "cancelled")


def test_our_kill_wins_over_the_exit_status() -> None:
    # A worker that catches SIGTERM and exits 0 after the deadline did not finish its work.
    failure, _ = classify_exit(0, None, timed_out=True, timeout_s=60)
    assert failure is FailureClass.timeout


def test_outside_sigkill_near_the_budget_is_the_kernel_oom_killer() -> None:
    failure, reason = classify_exit(None, signal.SIGKILL, peak_rss_mib=1900, memory_mib=2048)
    assert failure is FailureClass.oom
    assert "kernel OOM killer" in reason and "1.9 GiB" in reason and "2.0 GiB" in reason


def test_outside_sigkill_far_below_the_budget_is_infrastructure() -> None:
    failure, reason = classify_exit(None, signal.SIGKILL, peak_rss_mib=100, memory_mib=2048)
    assert failure is FailureClass.infrastructure
    assert reason == "killed by signal 9 (SIGKILL) from outside"


def test_outside_sigterm_is_infrastructure() -> None:
    failure, reason = classify_exit(None, signal.SIGTERM, peak_rss_mib=2000, memory_mib=2048)
    assert failure is FailureClass.infrastructure
    assert "SIGTERM" in reason


def test_shell_style_137_is_read_as_sigkill() -> None:
    failure, _ = classify_exit(137, None, peak_rss_mib=2000, memory_mib=2048)
    assert failure is FailureClass.oom


def test_segfault_is_a_code_error() -> None:
    failure, reason = classify_exit(None, signal.SIGSEGV, stderr_tail=["Fatal Python error: Segmentation fault"])
    assert failure is FailureClass.code_error
    assert "SIGSEGV" in reason and "Segmentation fault" in reason


def test_other_exit_codes_are_code_errors_with_the_last_stderr_line() -> None:
    tail = ["Traceback (most recent call last):", '  File "x.py", line 1', "ValueError: boom", ""]
    failure, reason = classify_exit(1, None, stderr_tail=tail)
    assert failure is FailureClass.code_error
    assert reason == "exit code 1: ValueError: boom"


def test_no_exit_status_is_infrastructure() -> None:
    failure, _ = classify_exit(None, None)
    assert failure is FailureClass.infrastructure


@pytest.mark.parametrize(
    ("failure", "retryable"),
    [
        (FailureClass.bad_input, False),
        (FailureClass.oom, False),
        (FailureClass.timeout, True),
        (FailureClass.infrastructure, True),
        (FailureClass.code_error, True),
    ],
)
def test_retry_policy_per_class(failure: FailureClass, retryable: bool) -> None:
    assert RETRYABLE[failure] is retryable
    assert failure.retryable is retryable


def test_every_class_has_a_retry_policy() -> None:
    assert set(RETRYABLE) == set(FailureClass)


def test_failure_block_is_marked_and_complete() -> None:
    tail = [f"line {i}" for i in range(15)]
    block = failure_block(
        failure=FailureClass.oom,
        reason="peak 3.1 GiB > budget 2.0 GiB",
        shard_index=2,
        shard_count=5,
        exit_code=None,
        signal=signal.SIGKILL,
        stderr_tail=tail,
        name="churn_training.train",
    )
    lines = block.splitlines()
    assert lines[0] == "=== mlbatch step failed ==="
    assert lines[-1] == "=== end ==="
    assert "step: churn_training.train" in lines
    assert "class: oom" in lines
    assert "retryable: no" in lines
    assert "shard: 2/5" in lines
    assert "exit: -9 (SIGKILL)" in lines
    assert "reason: peak 3.1 GiB > budget 2.0 GiB" in lines
    assert "stderr (last 10 lines):" in lines
    shown = [line.strip() for line in lines if line.startswith("  ")]
    assert shown == [f"line {i}" for i in range(5, 15)]


def test_failure_block_with_exit_code_and_empty_stderr() -> None:
    block = failure_block(
        failure=FailureClass.code_error, reason="exit code 1", shard_index=0, shard_count=1,
        exit_code=1, signal=None,
    )
    assert "exit: 1" in block.splitlines()
    assert "stderr: (empty)" in block.splitlines()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1800, "30m"), (5400, "1h30m"), (45, "45s"), (2.5, "2.5s"), (90, "1m30s"), (3600, "1h")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_mib() -> None:
    assert format_mib(600) == "600 MiB"
    assert format_mib(2048) == "2.0 GiB"
