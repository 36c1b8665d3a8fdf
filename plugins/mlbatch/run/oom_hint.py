"""What to write in the spec after an out-of-memory failure: a budget that fits the peak seen, or on_oom.

The suggestion is the peak with half again as headroom (a peak is sampled, the real one was at
least that high), rounded up to 64 MiB, or to 512 MiB past 1 GiB; without a known peak, twice the budget.
"""
from __future__ import annotations

import math

HEADROOM = 1.5
STEP_MIB, LARGE_STEP_MIB = 64, 512


def suggested_memory(peak_mib: float | None, budget_mib: float | None) -> str:
    """A `resources.memory` value as people write it (512Mi, 1.5Gi) that holds the peak seen."""
    base = peak_mib * HEADROOM if peak_mib else 2 * (budget_mib or 1024)
    step = LARGE_STEP_MIB if base > 1024 else STEP_MIB
    mib = max(STEP_MIB, math.ceil(base / step) * step)
    return f"{mib / 1024:g}Gi" if mib % 512 == 0 else f"{mib}Mi"


def oom_fix(peak_mib: float | None, budget_mib: float | None, shard: str) -> str:
    """The next step after shard `shard` ran out of memory: a budget for the peak, or on_oom."""
    memory = suggested_memory(peak_mib, budget_mib)
    return (f"shard {shard}: set resources.memory: {memory} in this step, or on_oom: {{grow: 2, max: {memory}}} "
            "to retry with twice the memory")
