"""What a step try used, for the run summary: vCPU- and GPU-seconds, memory budget vs peak, spot.

Budgets times durations: what a container backend bills for (and what a local step held).
GPU-seconds count only where a GPU was there to use: a backend that bills GPUs reserves the GPU
it was asked for; a local step that asked for one on a machine without any ran on CPU.
"""
from __future__ import annotations

import glob
from typing import TYPE_CHECKING, Any

from mlbatch.backends.jobs import JobResult
from mlbatch.backends.traits import backend_info

if TYPE_CHECKING:
    from mlbatch.backends.aws.polling import RemoteHandle
    from mlbatch.spec.models import ResolvedStep


def usage(result: JobResult, step: ResolvedStep, handle: RemoteHandle | None = None) -> dict[str, Any]:
    seconds = sum(outcome.duration_s for outcome in result.outcomes)
    peak = max((outcome.peak_rss_mib for outcome in result.outcomes), default=0.0)
    record: dict[str, Any] = {
        "backend": step.backend,
        "vcpu_s": round(seconds * step.vcpu, 1),
        "gpu_s": round(seconds * step.gpu, 1) if step.gpu and _gpu_there(step.backend) else 0.0,
        "memory_mib": result.memory_mib,
        "spot": handle.spot if handle is not None else False,
    }
    if handle is not None:  # where it ran, as far as the backend says
        record.update({name: value for name, value in handle.placement().items() if value})
    return {"peak_rss_mib": round(peak, 1), "usage": record}


def _gpu_there(backend: str) -> bool:
    """A backend that bills GPUs runs a GPU step on a GPU host; locally, is there an NVIDIA GPU at all?
    (the device nodes the driver creates: no torch or CUDA import in the Airflow process)"""
    return backend_info(backend).bills_gpu or bool(glob.glob("/dev/nvidia[0-9]*"))
