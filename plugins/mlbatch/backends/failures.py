"""Failure classes: the one place that decides why a step failed.

Every failed step gets exactly one class. The class drives retries (RETRYABLE),
alerts and the block written to the task log. This module is pure: it imports
neither Airflow nor psutil, so every backend (local processes, AWS Batch, ECS)
and the DAG-parse path can use it.
"""
from __future__ import annotations

import signal as _signal
from enum import Enum
from typing import Sequence

from workers.wire import (BAD_INPUT_EXIT_CODE, BAD_INPUT_PREFIX, TRANSIENT_EXIT_CODE, TRANSIENT_PREFIX,
                          bad_input_reason)

DISK_FULL_TEXT = ("No space left on device", "[Errno 28]")  # any program's ENOSPC, in its own words

# Share of the memory budget at which an unexplained SIGKILL is taken to be the
# kernel OOM killer rather than someone outside killing the worker.
KERNEL_OOM_SHARE = 0.9

# Signals a process raises against itself when its own code crashes (native
# segfault, abort() from a failed assertion in C code...). Those are code errors,
# not something done to the worker from outside.
CRASH_SIGNALS = frozenset(
    {_signal.SIGSEGV, _signal.SIGABRT, _signal.SIGBUS, _signal.SIGFPE, _signal.SIGILL, _signal.SIGTRAP, _signal.SIGSYS}
)

# Shells and container runtimes report a child killed by signal n as exit 128+n
# (137 = SIGKILL, 143 = SIGTERM: what ECS and Docker show for OOM kills and stops).
_SHELL_SIGNAL_EXITS = {128 + _signal.SIGKILL: _signal.SIGKILL, 128 + _signal.SIGTERM: _signal.SIGTERM}


class FailureClass(str, Enum):
    bad_input = "bad_input"  # the worker said its input is wrong: fail fast
    oom = "oom"  # over its memory budget: a retry would fail the same way
    timeout = "timeout"  # deadline passed; the process tree was killed
    infrastructure = "infrastructure"  # could not start, killed from outside, cancelled, host lost
    code_error = "code_error"  # anything else

    @property
    def retryable(self) -> bool:
        return RETRYABLE[self]


RETRYABLE: dict[FailureClass, bool] = {
    FailureClass.bad_input: False,
    FailureClass.oom: False,
    FailureClass.timeout: True,
    FailureClass.infrastructure: True,
    FailureClass.code_error: True,
}


def format_mib(mib: float) -> str:
    """'600 MiB', '3.1 GiB'."""
    if mib >= 1024:
        return f"{mib / 1024:.1f} GiB"
    return f"{mib:.0f} MiB"


def format_duration(seconds: float) -> str:
    """'30m', '1h30m', '45s', '2.5s'."""
    if seconds < 60:
        return f"{seconds:g}s" if seconds != int(seconds) else f"{int(seconds)}s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts)


def signal_name(signum: int) -> str:
    try:
        return _signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _last_line(lines: Sequence[str]) -> str:
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return ""


def _bad_input_reason(stderr_tail: Sequence[str]) -> str:
    for line in reversed(stderr_tail):
        if (reason := bad_input_reason(line)) is not None:
            return reason or "bad input (no reason given)"
    return f"exit code {BAD_INPUT_EXIT_CODE} (bad input) without a '{BAD_INPUT_PREFIX}' line on stderr"


def _transient_reason(exit_code: int, stderr_tail: Sequence[str]) -> str:
    for line in reversed(stderr_tail):
        text = line.strip()
        if text.startswith(TRANSIENT_PREFIX):
            return text[len(TRANSIENT_PREFIX):].strip()
    full = next((line.strip() for line in reversed(stderr_tail) if any(t in line for t in DISK_FULL_TEXT)), "")
    return f"disk full: {full}" if full else f"exit code {exit_code}: the machine or a service failed"


def classify_exit(
    exit_code: int | None,
    signal: int | None,
    *,
    watchdog_oom: bool = False,
    timed_out: bool = False,
    cancelled: bool = False,
    peak_rss_mib: float | None = None,
    memory_mib: float | None = None,
    timeout_s: float | None = None,
    stderr_tail: Sequence[str] = (),
) -> tuple[FailureClass | None, str]:
    """Class and one-line reason for how a worker ended; (None, "") when it succeeded.

    exit_code is the exit status of a process that exited, signal the number of
    the signal that killed it (one of them is set). watchdog_oom / timed_out /
    cancelled say that we killed it, and why: whatever it returned after that is
    not a finished result, so those flags win over the exit status.
    """
    peak = format_mib(peak_rss_mib) if peak_rss_mib is not None else "unknown"
    budget = format_mib(memory_mib) if memory_mib is not None else "unknown"

    if watchdog_oom:
        return FailureClass.oom, f"peak {peak} > budget {budget}"
    if timed_out:
        limit = f"its {format_duration(timeout_s)} timeout" if timeout_s is not None else "its deadline"
        return FailureClass.timeout, f"ran past {limit}"
    if cancelled:
        return FailureClass.infrastructure, "cancelled"

    if signal is None and exit_code in _SHELL_SIGNAL_EXITS:
        signal, exit_code = _SHELL_SIGNAL_EXITS[exit_code], None

    if signal is not None:
        name = signal_name(signal)
        if signal in CRASH_SIGNALS:
            detail = _last_line(stderr_tail)
            return FailureClass.code_error, f"crashed with signal {signal} ({name})" + (f": {detail}" if detail else "")
        if (
            signal == _signal.SIGKILL
            and peak_rss_mib is not None
            and memory_mib is not None
            and peak_rss_mib >= KERNEL_OOM_SHARE * memory_mib
        ):
            return FailureClass.oom, (
                f"killed by signal {signal} ({name}) at peak {peak}, near its budget {budget}: "
                "most likely the kernel OOM killer"
            )
        return FailureClass.infrastructure, f"killed by signal {signal} ({name}) from outside"

    if exit_code is None:
        return FailureClass.infrastructure, "ended without an exit status"
    if exit_code == 0:
        return None, ""
    if exit_code == BAD_INPUT_EXIT_CODE:
        return FailureClass.bad_input, _bad_input_reason(stderr_tail)
    if exit_code == TRANSIENT_EXIT_CODE or any(text in line for line in stderr_tail for text in DISK_FULL_TEXT):
        return FailureClass.infrastructure, _transient_reason(exit_code, stderr_tail)
    detail = _last_line(stderr_tail)
    return FailureClass.code_error, f"exit code {exit_code}" + (f": {detail}" if detail else "")


def format_exit(exit_code: int | None, signal: int | None) -> str:
    """'1', '-9 (SIGKILL)', 'none (not started)'."""
    if signal is not None:
        return f"-{signal} ({signal_name(signal)})"
    if exit_code is not None:
        return str(exit_code)
    return "none (not started)"


def shard_prefix(index: int, shard_count: int) -> str:
    """How a shard's log lines begin, on every backend: '[worker]' alone, else '[shard i/n]'."""
    return "[worker]" if shard_count == 1 else f"[shard {index}/{shard_count}]"


def failure_block(
    *,
    failure: FailureClass,
    reason: str,
    shard_index: int,
    shard_count: int,
    exit_code: int | None,
    signal: int | None,
    stderr_tail: Sequence[str] = (),
    name: str | None = None,
    peak_rss_mib: float | None = None,
    memory_mib: float | None = None,
    max_stderr_lines: int = 10,
    retryable: bool | None = None,
) -> str:
    """A clearly marked multi-line block for the task log, easy to spot and to grep (retryable None: as the class says)."""
    lines = ["=== mlbatch step failed ==="]
    if name:
        lines.append(f"step: {name}")
    lines += [
        f"class: {failure.value}",
        f"retryable: {'yes' if (failure.retryable if retryable is None else retryable) else 'no'}",
        f"shard: {shard_index}/{shard_count}",
        f"exit: {format_exit(exit_code, signal)}",
        f"reason: {reason}",
    ]
    if peak_rss_mib is not None and memory_mib is not None:
        lines.append(f"memory: peak {format_mib(peak_rss_mib)} of {format_mib(memory_mib)} budget")
    tail = list(stderr_tail)[-max_stderr_lines:] if max_stderr_lines > 0 else []
    lines.append(f"stderr (last {len(tail)} lines):" if tail else "stderr: (empty)")
    lines += [f"  {line}" for line in tail]
    lines.append("=== end ===")
    return "\n".join(lines)
