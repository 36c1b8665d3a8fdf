"""LocalBackend: the `Backend` that runs every shard of a try as its own capped local process.

run() blocks until every shard has ended (the shared ShardLoop with a LocalRunner); cancel() is safe
from any thread and from a signal handler, and kills every process group at once.
"""
from __future__ import annotations

import signal
from typing import Callable

from workers.wire import encode_ranges

from mlbatch.backends.failures import format_mib
from mlbatch.backends.jobs import JobRequest, JobResult
from mlbatch.backends.local.groups import ProcessGroups
from mlbatch.backends.local.runner import LocalRunner
from mlbatch.backends.shard_loop import ShardLoop
from mlbatch.backends.single_run import SingleRunBackend
from mlbatch.backends.slots import LocalSlots


class LocalBackend(SingleRunBackend):
    """Runs a JobRequest as local processes, one per shard, in parallel as capacity allows."""

    def __init__(
        self,
        log: Callable[[str], None] = print,
        slots: LocalSlots | None = None,
        poll_interval_s: float = 0.2,
        term_grace_s: float = 5.0,
    ) -> None:
        super().__init__(log)
        self._slots = slots
        self.poll_interval_s = poll_interval_s
        self.term_grace_s = term_grace_s
        self._groups = ProcessGroups()

    def _stop_running(self) -> None:
        """Kill every running process group of this try (SIGKILL): the workers die with their children."""
        with self._lock:
            self._groups.kill_all(signal.SIGKILL)

    def _run(self, request: JobRequest) -> JobResult:
        slots = self._slots if self._slots is not None else LocalSlots()
        if request.gpu:
            self._emit(f"{request.name}: asks for {request.gpu} GPU; local workers share every GPU of this host")
        if request.shard_count > 1:
            self._emit(
                f"{request.name}: running shards {encode_ranges(request.indices)} of {request.shard_count} "
                f"as local processes ({request.vcpu:g} vcpu, {format_mib(request.memory_mib)} each)"
            )
        # Interrupted (Airflow's execution_timeout raises in this thread), the loop abandons
        # every shard: no worker, zombie, held slot or file of the try is left behind.
        with LocalRunner(request, self._groups, self._emit, self._wake) as runner:
            return ShardLoop(request, runner, slots, self._emit, self._cancelled, self._wake,
                             self.term_grace_s).run(self.poll_interval_s)
