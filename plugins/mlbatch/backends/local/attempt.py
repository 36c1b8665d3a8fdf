"""LocalTry: one JobRequest run as local processes, from the first launch to the last reap.

Each tick enforces the deadlines, launches pending shards as host capacity allows,
lets the watchdog sample memory, and reaps the shards that exited. No shard starts
after another failed, after the deadline or after a cancel.
"""
from __future__ import annotations

import signal
import threading
import time
from collections import deque
from typing import Callable

from workers.wire import encode_ranges

from mlbatch.backends.failures import FailureClass, format_duration, shard_prefix
from mlbatch.backends.jobs import JobRequest, JobResult, ShardOutcome
from mlbatch.backends.local.groups import ProcessGroups
from mlbatch.backends.local.reaper import block, reap_if_exited
from mlbatch.backends.local.spawn import Shard, spawn
from mlbatch.backends.local.watchdog import watch_memory
from mlbatch.backends.slots import LocalSlots


class LocalTry:
    def __init__(self, request: JobRequest, slots: LocalSlots, groups: ProcessGroups, emit: Callable[[str], None],
                 cancelled: threading.Event, wake: threading.Event, term_grace_s: float) -> None:
        self.request, self.slots, self.groups, self.emit = request, slots, groups, emit
        self.cancelled, self.wake, self.term_grace_s = cancelled, wake, term_grace_s
        self.pending = deque(request.indices)
        self.running: dict[int, Shard] = {}
        self.outcomes: dict[int, ShardOutcome] = {}
        now = time.monotonic()
        self.deadline = now + request.timeout_s if request.timeout_s is not None else None
        self.start_deadline = now + request.start_timeout_s if request.start_timeout_s else None
        self.failed = self.timed_out = self.start_expired = self.ever_started = False
        self.term_sent_at: float | None = None
        self._waiting_logged: set[int] = set()

    def run(self, poll_interval_s: float) -> None:
        """Tick until no shard runs and none may start (or nothing could start before the start deadline)."""
        while True:
            now = time.monotonic()
            self._enforce_deadlines(now)
            if self.start_deadline is not None and not self.ever_started and now >= self.start_deadline:
                self.start_expired = True  # nothing could start in time: give up this try
                return
            self._launch()
            for shard in self.running.values():
                watch_memory(shard, self.request.memory_mib, self.groups, self.emit)
            self._reap()
            if not self.running and (not self.pending or self._stopped):
                return
            self.wake.wait(poll_interval_s)
            self.wake.clear()

    @property
    def _stopped(self) -> bool:
        return self.failed or self.timed_out or self.cancelled.is_set()

    def _enforce_deadlines(self, now: float) -> None:
        if self.cancelled.is_set():
            self._kill_running("cancel", signal.SIGKILL)
        elif self.deadline is not None and now >= self.deadline and not self.timed_out:
            self.timed_out, self.term_sent_at = True, now
            if self.running:
                self.emit(f"{self.request.name}: past its {format_duration(self.request.timeout_s or 0)} timeout, "
                          f"stopping shards {encode_ranges(self.running)} "
                          f"(SIGTERM, SIGKILL after {self.term_grace_s:g}s)")
            self._kill_running("timeout", signal.SIGTERM)
        if self.term_sent_at is not None and now - self.term_sent_at >= self.term_grace_s:
            for shard in self.running.values():
                self.groups.kill(shard.index, signal.SIGKILL)

    def _kill_running(self, why: str, signum: int) -> None:
        for shard in self.running.values():
            if shard.killed_for is None:
                shard.killed_for = why
                self.groups.kill(shard.index, signum)

    def _launch(self) -> None:
        while self.pending and not self._stopped:
            index = self.pending[0]
            lease = self.slots.try_acquire(self.request.vcpu)
            if lease is None:
                if index not in self._waiting_logged:
                    self._waiting_logged.add(index)
                    self.emit(f"{shard_prefix(index, self.request.shard_count)} waiting for "
                              f"{self.slots.slots_for(self.request.vcpu)} vcpu of local capacity "
                              f"({self.slots.capacity} vcpu on this host)")
                return
            self.pending.popleft()
            self.ever_started = True
            started = spawn(self.request, index, lease, self.groups, self.emit, self.wake)
            if isinstance(started, ShardOutcome):
                self.emit(f"{shard_prefix(index, self.request.shard_count)} could not start: {started.reason}")
                self.emit(block(self.request, started))
                self.outcomes[index] = started
                self.failed = True
                return
            self.running[index] = started
            if self.cancelled.is_set():  # cancel() came while it was being spawned
                started.killed_for = "cancel"
                self.groups.kill(index, signal.SIGKILL)

    def _reap(self) -> None:
        for index in list(self.running):
            outcome = reap_if_exited(self.request, self.running[index], self.groups, self.emit)
            if outcome is not None:
                del self.running[index]
                self.outcomes[index] = outcome
                self.failed = self.failed or not outcome.ok

    def abandon(self) -> None:
        """Interrupted: leave no worker, zombie or held slot behind."""
        for index, code in self.groups.abandon().items():
            if index in self.running:
                self.running[index].process.returncode = code
        for shard in self.running.values():
            shard.lease.release()
        self.running.clear()

    def result(self) -> JobResult:
        """Every shard that ran, and those that never started: why, when it was not another shard's failure."""
        request, not_started = self.request, []
        for index in self.pending:
            if self.cancelled.is_set():
                reason, failure = "cancelled before it started", FailureClass.infrastructure
            elif self.start_expired:
                limit = format_duration(request.start_timeout_s or 0)
                reason, failure = f"never started: no local capacity within its {limit} start_timeout", \
                    FailureClass.infrastructure
            elif self.timed_out:
                limit = format_duration(request.timeout_s or 0)
                reason, failure = f"not started within its {limit} timeout (waiting for local capacity)", \
                    FailureClass.timeout
            else:
                not_started.append(index)
                continue
            self.outcomes[index] = ShardOutcome(index=index, failure=failure, reason=reason)
        if not_started:
            self.emit(f"{request.name}: shards {encode_ranges(not_started)} not started because a shard failed")
        return JobResult(name=request.name, shard_count=request.shard_count, memory_mib=request.memory_mib,
                         outcomes=[self.outcomes[i] for i in sorted(self.outcomes)], not_started=not_started)
