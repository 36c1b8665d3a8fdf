"""Right-sizing advice for a step's memory from its last runs' measured peaks.

"peak 310 MiB of 3072 MiB over 10 runs: `memory: 512Mi` would do": the smallest usual size with
a quarter of headroom over the highest peak seen. A step whose budget grew after an OOM says
what it grew to, so the spec can start there.
"""
from __future__ import annotations

from dataclasses import dataclass

HEADROOM = 1.25  # over the highest peak seen: peaks vary with the data from run to run
SIZES_MIB = (128, 256, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576, 32768, 65536)
CLOSE_TO_BUDGET = 0.9  # a peak above this share of the budget is near an OOM


@dataclass(frozen=True)
class StepUse:
    """One computed try of a step: its measured peak and the budget it ran with."""

    peak_mib: float
    budget_mib: int


def memory_size(mib: float) -> str:
    """A spec's spelling of a size: 512Mi, 3Gi."""
    return f"{mib // 1024:.0f}Gi" if mib >= 1024 and mib % 1024 == 0 else f"{mib:.0f}Mi"


def advice(uses: list[StepUse], spec_budget_mib: int) -> str | None:
    """One sentence for the step, or None when its budget fits (or nothing was measured)."""
    measured = [use for use in uses if use.peak_mib > 0]
    if not measured:
        return None
    peak = max(use.peak_mib for use in measured)
    runs = f"{len(measured)} run{'s' if len(measured) != 1 else ''}"
    grown = max(use.budget_mib for use in measured)
    if grown > spec_budget_mib:
        return (f"grew to {grown} MiB after running out of memory (spec: {spec_budget_mib} MiB); "
                f"peak {peak:.0f} MiB over {runs}: `memory: {memory_size(_fitting(peak))}` starts there")
    if peak > CLOSE_TO_BUDGET * spec_budget_mib:
        return (f"peak {peak:.0f} MiB of {spec_budget_mib} MiB over {runs}: close to the budget, "
                f"`memory: {memory_size(_fitting(peak))}` gives it room")
    fitting = _fitting(peak)
    if fitting < spec_budget_mib:
        return f"peak {peak:.0f} MiB of {spec_budget_mib} MiB over {runs}: `memory: {memory_size(fitting)}` would do"
    return None


def _fitting(peak_mib: float) -> int:
    wanted = peak_mib * HEADROOM
    return next((size for size in SIZES_MIB if size >= wanted), int(-(-wanted // 1024) * 1024))
