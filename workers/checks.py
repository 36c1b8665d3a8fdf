"""Workers that exercise the platform itself: overhead, timeouts, memory budgets, failures."""
from __future__ import annotations

import os
import sys
import time

from workers.errors import BadInput
from workers.request import ShardResult, StepRequest

PAGE = 4096
CHUNK_MIB = 64


def noop(request: StepRequest) -> ShardResult:
    return ShardResult()


def sleep(request: StepRequest) -> ShardResult:
    seconds = request.settings.seconds
    print(f"sleeping {seconds:g}s", flush=True)
    time.sleep(seconds)
    return ShardResult(metrics={"slept_s": seconds})


def memory(request: StepRequest) -> ShardResult:
    """Grow resident memory by `mib` MiB, then hold it.

    Writing one byte per page makes every page resident whatever the allocator
    does (a calloc'd or lazily mapped buffer would otherwise stay virtual), so
    RSS really grows and a memory budget really sees it.
    """
    mib, hold = request.settings.mib, request.settings.hold_seconds
    chunks: list[bytearray] = []
    allocated = 0
    while allocated < mib:
        size = min(CHUNK_MIB, mib - allocated)
        chunk = bytearray(size * 1024 * 1024)
        chunk[::PAGE] = b"\x01" * len(range(0, len(chunk), PAGE))
        chunks.append(chunk)
        allocated += size
        print(f"allocated {allocated}/{mib} MiB (peak rss {_peak_rss_mib():.0f} MiB)", flush=True)
    print(f"holding {allocated} MiB for {hold:g}s", flush=True)
    time.sleep(hold)
    return ShardResult(counts={"mib": allocated}, metrics={"peak_rss_mib": round(_peak_rss_mib(), 1)})


def fail(request: StepRequest) -> ShardResult:
    """Fail while the try number is at most `fail_tries` on the chosen shards, then succeed."""
    settings = request.settings
    for name in settings.print_env:  # what the worker sees, e.g. to debug a region or profile
        print(f"{name}={os.environ.get(name, '')}", file=sys.stderr, flush=True)
    chosen = settings.fail_shards is None or request.shard_index in settings.fail_shards
    if request.try_number <= settings.fail_tries and chosen:
        reason = f"{settings.message} (shard {request.shard_index}, try {request.try_number})"
        if settings.bad_input:
            raise BadInput(reason)
        raise RuntimeError(reason)
    return ShardResult(counts={"tries": request.try_number})


def _peak_rss_mib() -> float:
    from workers.peak import own_peak_rss_mib  # not ru_maxrss: it starts at the spawning process's peak

    return own_peak_rss_mib()
