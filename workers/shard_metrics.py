"""A step's metrics from its shards' own: the mean, over the shards, of each metric every shard reports.

The rule of image steps (docs/image-steps.md) and of `@step` functions (python.call), which report
metrics of their own choosing. Stdlib only: the orchestrator commits with it, a worker names it.
"""
from __future__ import annotations

from typing import Any


def mean_over_shards(shards: list[dict[str, Any]]) -> dict[str, float]:
    """Each metric every shard manifest reports, averaged over the shards (one missing anywhere: left out)."""
    if not shards:
        return {}
    names = set.intersection(*(set(shard.get("metrics") or {}) for shard in shards))
    return {name: sum(shard["metrics"][name] for shard in shards) / len(shards) for name in sorted(names)}
