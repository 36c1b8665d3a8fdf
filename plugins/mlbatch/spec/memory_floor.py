"""The memory a worker needs only to start: Python and its libraries loaded, before any data.

A budget below it fails every try with `oom` however small the data. Measured as the peak RSS of
the libraries a worker imports (Python 3.11, this project's pins, `/usr/bin/time -f %M`):
pandas + scikit-learn + pyarrow + fsspec 204 MiB; with torch 382 MiB. The floors round those up.
"""
from __future__ import annotations

from mlbatch.spec.checks import Issue
from workers.registry import WORKERS

TABULAR_MIB = 210  # pandas, scikit-learn, pyarrow: the table and text workers
TORCH_MIB = 390  # the same with torch: the MLP and the text embedder
TORCH_WORKERS = ("workers.tabular.mlp:", "workers.text.embed:")
LIBRARY_WORKERS = ("workers.tabular.", "workers.text.")


def start_floor_mib(worker: str) -> int | None:
    """The measured start-up memory of a built-in worker; None for the light ones (checks, users' own)."""
    info = WORKERS.get(worker)
    if info is None:
        return None
    if info.target.startswith(TORCH_WORKERS):
        return TORCH_MIB
    return TABULAR_MIB if info.target.startswith(LIBRARY_WORKERS) else None


def memory_floor_warnings(spec) -> list[Issue]:  # spec: BatchSpec (not imported: lint imports it already)
    """Steps whose memory budget is below what their worker needs just to start."""
    issues = []
    for name, step in spec.resolved_steps().items():
        floor = start_floor_mib(step.run)
        if floor is None or step.memory_mib >= floor:
            continue
        own = spec.steps[name].resources
        where = ("steps", name, "resources", "memory") if own is not None and "memory" in own.model_fields_set \
            else ("defaults", "resources", "memory")
        issues.append(Issue(where, f"step '{name}' gets {step.memory_mib} MiB, below the {floor} MiB worker "
                                   f"{step.run!r} needs just to start (Python and its libraries): every try would "
                                   f"fail as oom", f"set resources.memory to at least {floor}Mi"))
    return issues
