"""Thread caps: numeric libraries get as many threads as the step's vcpu, on every backend.

Without them OpenMP, MKL, OpenBLAS and torch start a thread per core of the host (or of the
container's instance), and a 1-vcpu worker fights its neighbours for the CPUs.
"""
from __future__ import annotations

import math

THREAD_CAP_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "MLBATCH_NUM_THREADS",  # read by workers that size their own pools (torch)
)


def thread_cap(vcpu: float) -> int:
    return max(1, math.floor(vcpu))


def thread_env(vcpu: float) -> dict[str, str]:
    """Every thread-cap variable set to the step's whole vcpus (at least 1)."""
    threads = str(thread_cap(vcpu))
    return {name: threads for name in THREAD_CAP_VARS}
