"""The memory watchdog: a shard whose process tree goes over its budget is killed as out of memory.

It samples the resident memory of each shard's whole process tree every poll. Not
RLIMIT_AS: numpy/torch/jemalloc reserve large virtual ranges they never touch, so an
address-space limit kills healthy workers. Not cgroups: their memory controller is not
writable for an unprivileged user on most hosts. A very fast allocation can overshoot
the budget briefly before the next sample catches it.
"""
from __future__ import annotations

import signal
from typing import Callable

import psutil

from mlbatch.backends.failures import format_mib
from mlbatch.backends.local.groups import ProcessGroups
from mlbatch.backends.local.spawn import Shard

_MIB = 1024 * 1024


def tree_rss_mib(root: psutil.Process | None) -> float | None:
    """Resident memory of a process and all its descendants, in MiB."""
    if root is None:
        return None
    try:
        members = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass  # exited between listing and sampling
    return total / _MIB


def watch_memory(shard: Shard, budget_mib: int, groups: ProcessGroups, emit: Callable[[str], None]) -> None:
    """One sample: keep the shard's peak, and SIGKILL its group the first time it is over budget."""
    rss_mib = tree_rss_mib(shard.tree)
    if rss_mib is None:
        return
    shard.peak_mib = max(shard.peak_mib, rss_mib)
    if rss_mib > budget_mib and shard.killed_for is None:
        shard.killed_for = "oom"
        emit(f"{shard.prefix} over its memory budget ({format_mib(rss_mib)} > {format_mib(budget_mib)}): "
             "killing its process group")
        groups.kill(shard.index, signal.SIGKILL)
