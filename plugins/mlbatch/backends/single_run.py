"""What every backend that runs a try in the task process shares: one run() at a time, and a
cancel() that starts nothing new, stops what runs and, from another thread, waits for run() to
wind down, and one log sink that threads (log pumps, followers) share. LocalBackend and
DockerBackend build on it; each says what stopping means."""
from __future__ import annotations

import threading
from typing import Callable

from mlbatch.backends.jobs import JobRequest, JobResult


class SingleRunBackend:
    """Subclasses give `_run` (the try itself) and `_stop_running` (kill what runs, now)."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self._log = log
        self._log_lock = threading.Lock()
        # Reentrant: cancel() may run in a signal handler on the thread that holds it.
        self._lock = threading.RLock()
        self._cancelled = threading.Event()
        self._wake = threading.Event()  # wakes the run loop early (a shard ended, a cancel)
        self._idle = threading.Event()
        self._idle.set()
        self._run_thread: int | None = None

    def run(self, request: JobRequest) -> JobResult:
        with self._lock:
            if not self._idle.is_set():
                raise RuntimeError(f"this {type(self).__name__} is already running a request; use one backend per run")
            self._idle.clear()
            self._run_thread = threading.get_ident()
        try:
            return self._run(request)
        finally:
            with self._lock:
                self._run_thread = None
                self._idle.set()

    def cancel(self, wait_s: float = 10.0) -> None:
        """Stop every shard of this try; nothing new starts ("Mark failed", Airflow's on_kill).

        Safe from any thread and from a signal handler. From another thread it also waits up to
        wait_s for run() to collect what it stopped.
        """
        self._cancelled.set()
        self._wake.set()
        self._stop_running()
        with self._lock:
            waiting_thread = self._run_thread
        if waiting_thread is not None and waiting_thread != threading.get_ident():
            self._idle.wait(wait_s)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _emit(self, message: str) -> None:
        """One line to the log sink, one thread at a time."""
        with self._log_lock:
            try:
                self._log(message)
            except Exception:  # a broken log sink must not stall the log streams (and so the worker)
                pass

    def _run(self, request: JobRequest) -> JobResult:
        raise NotImplementedError

    def _stop_running(self) -> None:
        raise NotImplementedError
