"""`on_oom: {grow, max}`: the next try of an out-of-memory step gets a larger memory budget.

The grown budget is kept beside the step's outputs, per run, because Airflow keeps no state
of ours between the tries of a task (XCom of a failed try is cleared when it is retried).
"""
from __future__ import annotations

import math

from workers.artifacts import exists, join, read_json, write_json

from mlbatch.run.paths import run_key


def budget_uri(root: str, dag_id: str, step: str, run_id: str) -> str:
    return join(root, dag_id, step, "_tries", run_key(run_id), "memory.json")


def current_budget(uri: str, spec_mib: int) -> int:
    """The budget for this try: the spec's, or a larger one an earlier OOM try left."""
    return int(read_json(uri)["memory_mib"]) if exists(uri) else spec_mib


def grown_budget(current_mib: int, grow: float, max_mib: int) -> int | None:
    """The next budget, or None when the current one is already at the max."""
    if current_mib >= max_mib:
        return None
    return min(max_mib, math.ceil(current_mib * grow))


def save_budget(uri: str, memory_mib: int, after_try: int) -> None:
    write_json(uri, {"memory_mib": memory_mib, "after_try": after_try})
