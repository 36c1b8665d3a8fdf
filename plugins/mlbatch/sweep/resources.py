"""What a step left running, and when it is an orphan. Pure: no Airflow, no backend calls.

A step's container, Batch job or ECS task carries the tags of its JobRequest (dag, step, run,
try, ...): they name the task instance that started it (task id = step name). It is an orphan
when that task instance is not running (nor deferred, waiting on it in the triggerer): ended,
failed, up for retry or cleared; and only once it is older than a grace period, so that nothing
is stopped in the moment between a start and the state Airflow reports. A resource of a DAG run
this Airflow does not know is left alone: another deployment on the same Docker host or AWS
account started it, and only that one can tell.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

# A task instance in these states may still be watching its workers (deferred: from the triggerer).
WATCHING_STATES = frozenset({"running", "deferred"})
DEFAULT_GRACE_S = 300.0

# (dag_id, run_ids, task_ids) -> {run_id: {task_id: state}}: the Task SDK's get_task_states shape
TaskStates = Callable[[str, Sequence[str], Sequence[str]], Mapping[str, Mapping[str, str | None]]]


@dataclass(frozen=True)
class StepResource:
    """One container, job or task of a step, as its backend listed it."""

    kind: str  # "container", "Batch job", "ECS task": for the log
    id: str  # what its backend stops it by
    dag: str
    step: str
    run: str
    created: float  # seconds since the epoch
    status: str = ""
    where: str = ""  # a queue or a cluster, when the backend needs it to stop it

    @property
    def task_instance(self) -> str:
        return f"{self.dag}.{self.step} (run {self.run})"


@dataclass(frozen=True)
class Orphan:
    resource: StepResource
    reason: str


def step_tags(tags: Mapping[str, str], prefix: str) -> tuple[str, str, str] | None:
    """(dag, step, run) from a resource's tags or labels, None when it is not a step's."""
    found = tuple(tags.get(f"{prefix}{key}", "") for key in ("dag", "step", "run"))
    return found if all(found) else None  # type: ignore[return-value]


def orphans(resources: Iterable[StepResource], states: TaskStates, *, now: float,
            grace_s: float = DEFAULT_GRACE_S) -> tuple[list[Orphan], list[StepResource]]:
    """The resources past the grace period whose task instance is not running, each with the reason;
    and those of runs this Airflow does not know (left alone)."""
    old = [r for r in resources if now - r.created >= grace_s]
    by_dag: dict[str, list[StepResource]] = {}
    for resource in old:
        by_dag.setdefault(resource.dag, []).append(resource)
    found: list[Orphan] = []
    foreign: list[StepResource] = []
    for dag, members in sorted(by_dag.items()):
        known = states(dag, sorted({r.run for r in members}), sorted({r.step for r in members}))
        for resource in members:
            tasks = known.get(resource.run)
            if tasks is None:
                foreign.append(resource)
            elif resource.step not in tasks:
                found.append(Orphan(resource, f"task instance {resource.task_instance} no longer exists"))
            elif (state := tasks[resource.step]) not in WATCHING_STATES:
                found.append(Orphan(resource, f"task instance {resource.task_instance} is {state or 'not started'}, "
                                              "not running"))
    return found, foreign
