"""LocalBackend: the `Backend` that runs every shard of a try as its own capped local process.

run() blocks until every shard has ended (the shared ShardLoop with a LocalRunner); cancel() is safe
from any thread and from a signal handler, and kills every process group at once.
"""
from __future__ import annotations

import signal
from typing import Any, Callable

from workers.wire import encode_ranges

from mlbatch.backends.failures import format_mib
from mlbatch.backends.jobs import JobRequest, JobResult
from mlbatch.backends.local.groups import ProcessGroups
from mlbatch.backends.local.runner import LocalRunner
from mlbatch.backends.local.worker_user import worker_user
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
        settings: Any = None,
    ) -> None:
        super().__init__(log)
        self._slots = slots
        self._settings = settings  # a mlbatch.settings.LocalSettings; None: read when run() starts
        self.poll_interval_s = poll_interval_s
        self.term_grace_s = term_grace_s
        self._groups = ProcessGroups()

    def _stop_running(self) -> None:
        """Kill every running process group of this try (SIGKILL): the workers die with their children."""
        with self._lock:
            self._groups.kill_all(signal.SIGKILL)

    def _local_settings(self) -> Any:
        if self._settings is not None:
            return self._settings
        from mlbatch.settings import load_settings

        return load_settings().local

    def _run(self, request: JobRequest) -> JobResult:
        slots = self._slots if self._slots is not None else LocalSlots()
        if request.gpu:
            self._emit(f"{request.name}: asks for {request.gpu} GPU; local workers share every GPU of this host")
        if request.shard_count > 1:
            self._emit(
                f"{request.name}: running shards {encode_ranges(request.indices)} of {request.shard_count} "
                f"as local processes ({request.vcpu:g} vcpu, {format_mib(request.memory_mib)} each)"
            )
        user = worker_user(request, self._local_settings().user)
        if user is not None:
            self._emit(f"{request.name}: the task process runs as root: its workers run as uid {user.uid}")
        # Interrupted (Airflow's execution_timeout raises in this thread), the loop abandons
        # every shard: no worker, zombie, held slot or file of the try is left behind.
        with LocalRunner(request, self._groups, self._emit, self._wake, user) as runner:
            return ShardLoop(request, runner, slots, self._emit, self._cancelled, self._wake,
                             self.term_grace_s).run(self.poll_interval_s)
