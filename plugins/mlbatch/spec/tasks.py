"""The task (binary, multiclass or regression) each step of a batch works on, as far as the spec tells.

A data worker (table.load, features.synthetic) says the task of the table it writes (a
table.load without params.task: the label's values tell, which only `mlbatch lint` reads, see
spec.sources); every
other step works on the task of the data steps it needs, directly or through other steps.
Lint uses it to catch a model worker that cannot handle the batch's task, and to check a gate
against the metrics the worker reports for that task. Reads the raw spec mapping, like checks.py.
"""
from __future__ import annotations

from typing import Any

from mlbatch.spec.checks import Issue
from workers.registry import WORKERS


def step_tasks(steps: dict[str, Any]) -> dict[str, set[str]]:
    """step -> the tasks of the tables upstream of it (empty where the spec does not tell)."""
    found: dict[str, set[str]] = {}

    def visit(name: str, seen: frozenset[str]) -> set[str]:
        if name in found:
            return found[name]
        step = steps.get(name)
        if not isinstance(step, dict) or name in seen:
            return set()
        worker = WORKERS.get(step.get("run")) if isinstance(step.get("run"), str) else None
        own = worker.table_task(step.get("params") if isinstance(step.get("params"), dict) else None) if worker else None
        needs = step.get("needs") if isinstance(step.get("needs"), list) else []
        tasks = {own} if own else set().union(*(visit(n, seen | {name}) for n in needs if isinstance(n, str)))
        found[name] = tasks
        return tasks

    for name in steps:
        visit(name, frozenset())
    return found


def task_issues(data: Any) -> list[Issue]:
    """Model steps whose worker cannot handle the task of the tables they read."""
    steps = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(steps, dict):
        return []
    issues = []
    for name, tasks in step_tasks(steps).items():
        run = steps[name].get("run") if isinstance(steps[name], dict) else None
        worker = WORKERS.get(run) if isinstance(run, str) else None
        if worker is None or not worker.task_metrics:
            continue
        if len(tasks) > 1:
            issues.append(Issue(("steps", name, "needs"), f"reads tables of different tasks ({', '.join(sorted(tasks))})",
                                "give a model step the data of one task"))
        for task in sorted(tasks - set(worker.task_metrics)):
            handled = " and ".join(worker.task_metrics)
            issues.append(Issue(("steps", name, "run"), f"worker {worker.name!r} handles {handled} tasks only, but this "
                                f"step reads a {task} table", f"use a worker that handles {task} (python -m workers list), "
                                "or a table of another task"))
    return issues
