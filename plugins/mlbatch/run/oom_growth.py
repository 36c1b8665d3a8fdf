"""`on_oom: {grow, max}`: the next try of an out-of-memory step gets a larger memory budget.

The grown budget is kept beside the step's outputs, per run, because Airflow keeps no state
of ours between the tries of a task (XCom of a failed try is cleared when it is retried).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

from workers.artifacts import exists, join, read_json, write_json

from mlbatch.run.paths import run_key

if TYPE_CHECKING:
    from mlbatch.spec.models import ResolvedStep


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


def try_budget(step: ResolvedStep, uri: Callable[[], str], log: Any) -> int:
    """The memory budget of this try of `step` (a ResolvedStep): the spec's, or one grown after an OOM.

    `uri` gives the budget's place; it is asked only for a step with on_oom.
    """
    if step.oom_grow is None:
        return step.memory_mib
    budget = current_budget(uri(), step.memory_mib)
    if budget != step.memory_mib:
        log.info("memory budget %d MiB (grown from %d MiB after an out-of-memory try; on_oom.max %d MiB)",
                 budget, step.memory_mib, step.oom_max_mib)
    return budget


def grow_after_oom(step: ResolvedStep, uri: str, memory_mib: int, try_number: int, log: Any) -> bool:
    """With on_oom, record a larger budget for the next try; False when there is none to give."""
    if step.oom_grow is None:
        return False
    grown = grown_budget(memory_mib, step.oom_grow, step.oom_max_mib)
    if grown is None:
        log.warning("out of memory at the on_oom.max budget of %d MiB: not retrying", memory_mib)
        return False
    save_budget(uri, grown, try_number)
    log.warning("out of memory with %d MiB: the next try gets %d MiB (on_oom: grow %g, max %d MiB)",
                memory_mib, grown, step.oom_grow, step.oom_max_mib)
    return True
