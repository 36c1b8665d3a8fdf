"""One sweep: every source's step resources, the orphans among them stopped, each action logged."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from mlbatch.sweep.resources import DEFAULT_GRACE_S, Orphan, StepResource, TaskStates, orphans


class Source(Protocol):
    """A backend's listing of what steps left running, and how it stops one (backends/*/sweep.py)."""

    name: str

    def list(self) -> list[StepResource]: ...

    def stop(self, resource: StepResource, reason: str) -> None: ...


@dataclass
class SweepReport:
    stopped: list[Orphan] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # a source that could not be listed, a stop that failed


def sweep(sources: Sequence[Source], states: TaskStates, *, log: Callable[[str], None] = print,
          grace_s: float = DEFAULT_GRACE_S, only_dags: Sequence[str] = (),
          clock: Callable[[], float] = time.time) -> SweepReport:
    """Stop every orphan of every source (`only_dags`: of those batches alone); a failing source skips only itself."""
    report = SweepReport()
    for source in sources:
        try:
            listed = [r for r in source.list() if not only_dags or r.dag in only_dags]
        except Exception as error:  # noqa: BLE001 - one unreachable backend must not stop the others' sweep
            report.failed.append(f"{source.name}: could not list: {error}")
            log(report.failed[-1])
            continue
        found, foreign = orphans(listed, states, now=clock(), grace_s=grace_s)
        log(f"{source.name}: {len(listed)} step resources, {len(found)} orphaned, {len(foreign)} of runs this "
            "Airflow does not know (left alone)")
        for orphan in found:
            _stop(source, orphan, report, log)
    return report


def _stop(source: Source, orphan: Orphan, report: SweepReport, log: Callable[[str], None]) -> None:
    resource = orphan.resource
    what = f"{source.name}: {resource.kind} {resource.id} ({resource.status or 'unknown'})"
    try:
        source.stop(resource, f"mlbatch sweeper: {orphan.reason}")
    except Exception as error:  # noqa: BLE001 - logged and reported; the next sweep tries again
        report.failed.append(f"{what}: could not stop: {error}")
        log(report.failed[-1])
        return
    report.stopped.append(orphan)
    log(f"{what} stopped: {orphan.reason}")
