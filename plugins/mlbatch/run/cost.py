"""What a step try used, for the run summary: vCPU- and GPU-seconds, memory budget vs peak, spot.

Budgets times durations: what a container backend bills for (and what a local step held).
"""
from __future__ import annotations

from typing import Any

from mlbatch.backends.jobs import JobResult


def usage(result: JobResult, step: Any, handle: Any = None) -> dict[str, Any]:
    seconds = sum(outcome.duration_s for outcome in result.outcomes)
    peak = max((outcome.peak_rss_mib for outcome in result.outcomes), default=0.0)
    record: dict[str, Any] = {
        "backend": step.backend,
        "vcpu_s": round(seconds * step.vcpu, 1),
        "gpu_s": round(seconds * step.gpu, 1),
        "memory_mib": result.memory_mib,
        "spot": bool(getattr(handle, "spot", False)),
    }
    for name in ("job_id", "queue", "capacity_provider"):  # where it ran, as far as the backend says
        if getattr(handle, name, None):
            record[name] = getattr(handle, name)
    return {"peak_rss_mib": round(peak, 1), "usage": record}
