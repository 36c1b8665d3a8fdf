"""LocalBackend: the `Backend` that runs every shard of a try as its own capped local process.

run() blocks until every shard has ended (one LocalTry does the work); cancel() is safe
from any thread and from a signal handler, and kills every process group at once.
"""
from __future__ import annotations

import signal
import threading
from typing import Callable

from workers.wire import encode_ranges

from mlbatch.backends.failures import format_mib
from mlbatch.backends.jobs import JobRequest, JobResult
from mlbatch.backends.local.attempt import LocalTry
from mlbatch.backends.local.groups import ProcessGroups
from mlbatch.backends.slots import LocalSlots


class LocalBackend:
    """Runs a JobRequest as local processes, one per shard, in parallel as capacity allows."""

    def __init__(
        self,
        log: Callable[[str], None] = print,
        slots: LocalSlots | None = None,
        poll_interval_s: float = 0.2,
        term_grace_s: float = 5.0,
    ) -> None:
        self._log = log
        self._slots = slots
        self.poll_interval_s = poll_interval_s
        self.term_grace_s = term_grace_s
        # Reentrant: cancel() may run in a signal handler on the thread that holds it.
        self._lock = threading.RLock()
        self._log_lock = threading.Lock()
        self._groups = ProcessGroups()
        self._cancelled = threading.Event()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._run_thread: int | None = None

    def run(self, request: JobRequest) -> JobResult:
        with self._lock:
            if not self._idle.is_set():
                raise RuntimeError("this LocalBackend is already running a request; use one backend per run")
            self._idle.clear()
            self._run_thread = threading.get_ident()
        try:
            return self._run(request)
        finally:
            with self._lock:
                self._run_thread = None
                self._idle.set()

    def cancel(self, wait_s: float = 10.0) -> None:
        """Kill every running process group of this backend (SIGKILL); nothing new starts.

        Safe from any thread and from a signal handler (Airflow's on_kill). From
        another thread it also waits up to wait_s for run() to reap the processes.
        """
        self._cancelled.set()
        self._wake.set()
        with self._lock:
            self._groups.kill_all(signal.SIGKILL)
            waiting_thread = self._run_thread
        if waiting_thread is not None and waiting_thread != threading.get_ident():
            self._idle.wait(wait_s)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _run(self, request: JobRequest) -> JobResult:
        slots = self._slots if self._slots is not None else LocalSlots()
        if request.gpu:
            self._emit(f"{request.name}: asks for {request.gpu} GPU; local workers share every GPU of this host")
        if request.shard_count > 1:
            self._emit(
                f"{request.name}: running shards {encode_ranges(request.indices)} of {request.shard_count} "
                f"as local processes ({request.vcpu:g} vcpu, {format_mib(request.memory_mib)} each)"
            )
        attempt = LocalTry(request, slots, self._groups, self._emit, self._cancelled, self._wake, self.term_grace_s)
        try:
            attempt.run(self.poll_interval_s)
        except BaseException:
            # Interrupted (Airflow's execution_timeout raises in this thread): leave no
            # worker, zombie or held slot behind, then let the exception through.
            attempt.abandon()
            raise
        return attempt.result()

    def _emit(self, message: str) -> None:
        with self._log_lock:
            try:
                self._log(message)
            except Exception:  # a broken log sink must not stall the pipes (and so the worker)
                pass
