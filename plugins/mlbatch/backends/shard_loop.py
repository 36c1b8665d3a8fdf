"""ShardLoop: one try run as shards on this machine or one Docker host, from the first launch to the last reap.

Every backend that runs shards itself shares this loop; what a shard is (a process group, a
container) is its `ShardRunner`'s business. Each tick enforces the deadlines (TERM, then KILL
after a grace), launches pending shards as the vcpu slots allow, lets the runner watch what
runs, and reaps the shards that ended. No shard starts after another failed, after the deadline
or after a cancel; those that never started get a reason when a deadline or the cancel explains it.
"""
from __future__ import annotations

import signal
import threading
import time
from collections import deque
from typing import Callable, Protocol

from workers.wire import encode_ranges

from mlbatch.backends.failures import FailureClass, format_duration, shard_prefix
from mlbatch.backends.jobs import JobRequest, JobResult, ShardOutcome
from mlbatch.backends.slots import LocalSlots, SlotLease

Emit = Callable[[str], None]


class ShardRunner(Protocol):
    """What a backend does to one shard; the loop decides when."""

    capacity: str  # what a waiting shard waits for, in words: "local capacity", "capacity on the Docker host"

    def launch(self, index: int, lease: SlotLease) -> ShardOutcome | None:
        """Start shard `index` holding `lease`; None once it runs, else why it could not start (lease released)."""
        ...

    def running(self) -> list[int]:
        """The shards started and not yet reaped."""
        ...

    def signal(self, signum: signal.Signals, why: str | None) -> None:
        """Send `signum` to what runs; with `why` ("timeout", "cancel") only to shards not stopped for a reason yet,
        which then keep `why` as the reason they were stopped."""
        ...

    def watch(self) -> None:
        """Once a tick, while shards run (the local memory watchdog)."""
        ...

    def reap(self) -> list[ShardOutcome]:
        """The shards that ended since the last look, classified and logged; their leases released."""
        ...

    def abandon(self) -> None:
        """Interrupted: stop and forget every shard now, leaving no worker or held slot behind."""
        ...


def failure_block(request: JobRequest, outcome: ShardOutcome) -> str:
    """The failure block of a failed shard, for the task log (the same block a JobResult reports)."""
    return JobResult(name=request.name, shard_count=request.shard_count, memory_mib=request.memory_mib,
                     outcomes=[outcome]).failure_report()


class ShardLoop:
    def __init__(self, request: JobRequest, runner: ShardRunner, slots: LocalSlots, emit: Emit,
                 cancelled: threading.Event, wake: threading.Event, term_grace_s: float) -> None:
        self.request, self.runner, self.slots, self.emit = request, runner, slots, emit
        self.cancelled, self.wake, self.term_grace_s = cancelled, wake, term_grace_s
        self.pending = deque(request.indices)
        self.outcomes: dict[int, ShardOutcome] = {}
        now = time.monotonic()
        self.deadline = now + request.timeout_s if request.timeout_s is not None else None
        self.start_deadline = now + request.start_timeout_s if request.start_timeout_s else None
        self.failed = self.timed_out = self.start_expired = self.ever_started = False
        self.term_sent_at: float | None = None
        self._waiting_logged: set[int] = set()

    def run(self, poll_interval_s: float) -> JobResult:
        """Tick until no shard runs and none may start; the result. Interrupted, it abandons every shard."""
        try:
            self._tick_until_done(poll_interval_s)
        except BaseException:
            self.runner.abandon()
            raise
        return self.result()

    def _tick_until_done(self, poll_interval_s: float) -> None:
        while True:
            now = time.monotonic()
            self._enforce_deadlines(now)
            if self.start_deadline is not None and not self.ever_started and now >= self.start_deadline:
                self.start_expired = True  # nothing could start in time: give up this try
                return
            self._launch()
            self.runner.watch()
            self._reap()
            if not self.runner.running() and (not self.pending or self._stopped):
                return
            self.wake.wait(poll_interval_s)
            self.wake.clear()

    @property
    def _stopped(self) -> bool:
        return self.failed or self.timed_out or self.cancelled.is_set()

    def _enforce_deadlines(self, now: float) -> None:
        if self.cancelled.is_set():
            self.runner.signal(signal.SIGKILL, "cancel")
        elif self.deadline is not None and now >= self.deadline and not self.timed_out:
            self.timed_out, self.term_sent_at = True, now
            if running := self.runner.running():
                self.emit(f"{self.request.name}: past its {format_duration(self.request.timeout_s or 0)} timeout, "
                          f"stopping shards {encode_ranges(running)} (SIGTERM, SIGKILL after {self.term_grace_s:g}s)")
            self.runner.signal(signal.SIGTERM, "timeout")
        if self.term_sent_at is not None and now - self.term_sent_at >= self.term_grace_s:
            self.runner.signal(signal.SIGKILL, None)

    def _launch(self) -> None:
        while self.pending and not self._stopped:
            index = self.pending[0]
            lease = self.slots.try_acquire(self.request.vcpu)
            if lease is None:
                if index not in self._waiting_logged:
                    self._waiting_logged.add(index)
                    self.emit(f"{shard_prefix(index, self.request.shard_count)} waiting for "
                              f"{self.slots.slots_for(self.request.vcpu)} vcpu of {self.runner.capacity} "
                              f"({self.slots.capacity} vcpu in all)")
                return
            self.pending.popleft()
            self.ever_started = True
            failed = self.runner.launch(index, lease)
            if failed is not None:
                self.emit(f"{shard_prefix(index, self.request.shard_count)} could not start: {failed.reason}")
                self._ended(failed)
                return
            if self.cancelled.is_set():  # cancel() came while it was being started
                self.runner.signal(signal.SIGKILL, "cancel")

    def _reap(self) -> None:
        for outcome in self.runner.reap():
            self._ended(outcome)

    def _ended(self, outcome: ShardOutcome) -> None:
        self.outcomes[outcome.index] = outcome
        if not outcome.ok:
            self.failed = True
            self.emit(failure_block(self.request, outcome))

    def result(self) -> JobResult:
        """Every shard that ran, and those that never started: why, when it was not another shard's failure."""
        request, not_started = self.request, []
        for index in self.pending:
            if self.cancelled.is_set():
                reason, failure = "cancelled before it started", FailureClass.infrastructure
            elif self.start_expired:
                reason, failure = (f"never started: no {self.runner.capacity} within its "
                                   f"{format_duration(request.start_timeout_s or 0)} start_timeout",
                                   FailureClass.infrastructure)
            elif self.timed_out:
                reason, failure = (f"not started within its {format_duration(request.timeout_s or 0)} timeout "
                                   f"(waiting for {self.runner.capacity})", FailureClass.timeout)
            else:
                not_started.append(index)
                continue
            self.outcomes[index] = ShardOutcome(index=index, failure=failure, reason=reason)
        if not_started:
            self.emit(f"{request.name}: shards {encode_ranges(not_started)} not started because a shard failed")
        return JobResult(name=request.name, shard_count=request.shard_count, memory_mib=request.memory_mib,
                         outcomes=[self.outcomes[i] for i in sorted(self.outcomes)], not_started=not_started)
