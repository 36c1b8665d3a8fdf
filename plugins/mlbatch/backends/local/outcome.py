"""Reaping a shard that exited: its status, peak memory and stderr tail, as a classified ShardOutcome."""
from __future__ import annotations

import contextlib
import os
import time
from typing import Any, Callable

from workers.peak import read_peak

from mlbatch.backends.failures import classify_exit, format_exit, format_mib
from mlbatch.backends.jobs import JobRequest, ShardOutcome
from mlbatch.backends.local.groups import ProcessGroups
from mlbatch.backends.local.worker_user import remove_scratch
from mlbatch.backends.local.spawn import Shard

_READER_JOIN_S = 5.0


def reap_if_exited(request: JobRequest, shard: Shard, groups: ProcessGroups,
                   emit: Callable[[str], None]) -> ShardOutcome | None:
    """The shard's outcome once its process has exited (logged); None while it runs."""
    # Look without reaping first: until it is reaped the leader's pid keeps the
    # group id from being reused, so killing the group cannot hit a stranger.
    try:
        exited = os.waitid(os.P_PID, shard.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        exited = None
    if exited is None:
        return None
    status, usage = groups.reap(shard.index, shard.pid)
    shard.process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    duration = time.monotonic() - shard.started
    for reader in shard.readers:
        reader.join(_READER_JOIN_S)
    shard.lease.release()
    remove_scratch(shard.given)
    outcome, peak = _outcome(request, shard, status, usage, duration)
    verdict = "ok" if outcome.failure is None else f"{outcome.failure.value}: {outcome.reason}"
    emit(f"{shard.prefix} finished pid {shard.pid} in {duration:.1f}s, "
         f"exit {format_exit(outcome.exit_code, outcome.signal)}, peak {format_mib(peak)}: {verdict}")
    return outcome


def _outcome(request: JobRequest, shard: Shard, status: int, usage: Any, duration: float
             ) -> tuple[ShardOutcome, float]:
    """The classified outcome, and the peak memory in MiB (the watchdog's samples or the kernel's, the larger)."""
    exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    signum = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    peak = max(shard.peak_mib, _reported_peak(shard, usage))
    # A SIGKILL cannot be handled: exit 0 means it finished before our kill landed.
    finished_anyway = exit_code == 0 and shard.killed_for in ("oom", "cancel")
    killed_for = None if finished_anyway else shard.killed_for
    tail = list(shard.stderr_tail)
    failure, reason = classify_exit(
        exit_code, signum, watchdog_oom=killed_for == "oom", timed_out=killed_for == "timeout",
        cancelled=killed_for == "cancel", peak_rss_mib=peak, memory_mib=request.memory_mib,
        timeout_s=request.timeout_s, stderr_tail=tail,
    )
    return ShardOutcome(index=shard.index, exit_code=exit_code, signal=signum, peak_rss_mib=round(peak, 1),
                        duration_s=round(duration, 3), failure=failure, reason=reason, stderr_tail=tail), peak


def _reported_peak(shard: Shard, usage: Any) -> float:
    """The worker's own peak (VmHWM, written at its exit); else the kernel's ru_maxrss, which starts at
    the peak of this process that spawned it (Linux keeps it across exec): too high, never too low."""
    reported = read_peak(shard.peak_file) if shard.peak_file else None
    if shard.peak_file:
        with contextlib.suppress(OSError):
            os.unlink(shard.peak_file)
    return reported if reported else usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux
