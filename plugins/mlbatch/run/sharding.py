"""How many shards a step fans out to: fixed in the spec, or sized at run time."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from mlbatch.spec.models import ShardsFrom


class ShardSizingError(ValueError):
    pass


def resolve_shard_count(shards: int | ShardsFrom, upstream: Mapping[str, Mapping[str, Any]]) -> int:
    """`shards` is fixed, or sized from an upstream count; `upstream` maps step -> its summary.

    ceil(count / per), at least 1 (an empty input still gets one shard that writes an
    empty result, so downstream steps see a committed output), at most `max`.
    """
    if isinstance(shards, int):
        return shards
    summary = upstream.get(shards.step)
    if summary is None:
        raise ShardSizingError(f"shards.of names step {shards.step!r}, whose output is not available")
    counts = summary.get("counts", {})
    if shards.count not in counts:
        known = ", ".join(sorted(counts)) or "none"
        raise ShardSizingError(
            f"shards.of = {shards.step}.{shards.count}: step {shards.step!r} reported no count "
            f"{shards.count!r} (its counts: {known})"
        )
    total = int(counts[shards.count])
    return max(1, min(shards.max, math.ceil(total / shards.per)))
