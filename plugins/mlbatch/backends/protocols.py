"""What a backend is: the two shapes the step operator knows, and the progress of a remote try.

A backend takes one `JobRequest` (one try of one step, every shard of it) and gives back
one `JobResult`. It comes in two shapes:

- `Backend` runs the try to completion in the task process (local processes, Docker
  containers on this host): `run()` blocks until every shard has ended, `cancel()` is
  Airflow's on_kill.
- `RemoteBackend` hands the try to a remote service (AWS Batch, Amazon ECS):
  `submit()` starts it (or reattaches to a live job computing the same identity) and
  returns a small serializable handle; the operator then either waits in the task
  (`wait()`) or defers to the triggerer (`trigger()`), and `finish()` turns the
  trigger's `Progress` back into a `JobResult`.

The operator is typed against these Protocols alone; `get_backend` picks the class.
Imports no Airflow: a trigger is returned as an object the operator passes to `defer()`.
"""
from __future__ import annotations

from enum import Enum
from typing import Any, Callable, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from mlbatch.backends.jobs import JobRequest, JobResult

LogLine = Callable[[str], None]


class Progress(str, Enum):
    """Where a remote try stands after one look (a str, so it rides in a trigger event as is)."""

    waiting = "waiting"  # queued or running: look again later
    done = "done"  # every shard ended, well or not: collect the result
    not_started = "not_started"  # nothing started before the start deadline (capacity, queue)
    timed_out = "timed_out"  # the try's deadline passed while it ran (backends that enforce it themselves)
    missing = "missing"  # the service no longer knows the job (expired from its history, or never there)

    @property
    def finished(self) -> bool:
        return self is not Progress.waiting


Handle = TypeVar("Handle", bound=BaseModel)


@runtime_checkable
class Backend(Protocol):
    """Runs a try to completion in this process."""

    def run(self, request: JobRequest) -> JobResult:
        """Run the request's shards (each isolated, each within its limits) and report how each ended."""
        ...

    def cancel(self) -> None:
        """Stop every shard still running (Airflow's on_kill, or the task interrupted)."""
        ...


@runtime_checkable
class RemoteBackend(Backend, Protocol[Handle]):
    """Submits a try to a remote service; the wait happens in the task or in the triggerer."""

    handle_type: type[Handle]

    @property
    def deferrable_default(self) -> bool:
        """Whether a step waits in the triggerer when its spec says nothing."""
        ...

    def submit(self, request: JobRequest) -> Handle:
        """Start the try, or reattach to a live one with the same `request.identity`."""
        ...

    def wait(self, handle: Handle) -> JobResult:
        """Poll in this process until the try ends, then collect it."""
        ...

    def trigger(self, handle: Handle, resume: dict[str, Any] | None = None) -> Any:
        """A serializable Airflow trigger that fires once the try has ended; `resume` rides in its event."""
        ...

    def finish(self, handle: Handle, progress: Progress | None) -> JobResult:
        """The result once the trigger reported `progress`."""
        ...
