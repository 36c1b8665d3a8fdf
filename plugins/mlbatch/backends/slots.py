"""Cross-process admission of local workers by vcpu.

Why this exists: Airflow pools count task instances, with a slot count fixed when
the DAG is parsed. Here shard counts are decided at run time and one task runs
several worker processes, each asking for its own vcpu, so a pool cannot keep the
machine from being oversubscribed. Every local worker (from any task process on
this host) therefore takes vcpu slots here first.

Mechanics: capacity-many lock files slot-0.lock .. slot-{C-1}.lock in one
directory, each held with fcntl.flock. A worker needing k slots grabs k free
files without blocking; if it cannot get all k it lets go of what it got and
tries again a little later, so no one holds some slots while waiting for more
(no deadlock between two half-served requests). A holder that dies frees its
slots because the kernel drops flock locks with the last open descriptor.
"""
from __future__ import annotations

import errno
import fcntl
import math
import os
import threading
import time
from pathlib import Path
from typing import Callable

CAPACITY_ENV = "MLBATCH_LOCAL_VCPU"
DIRECTORY_ENV = "MLBATCH_LOCAL_SLOTS_DIR"


def default_capacity() -> int:
    """MLBATCH_LOCAL_VCPU if set, else the number of CPUs."""
    raw = os.environ.get(CAPACITY_ENV, "").strip()
    if raw:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{CAPACITY_ENV}={raw!r} is not a number of vcpu") from None
        if value < 1:
            raise ValueError(f"{CAPACITY_ENV}={raw!r} must be at least 1")
        return int(value)
    return os.cpu_count() or 1


def default_directory() -> Path:
    raw = os.environ.get(DIRECTORY_ENV, "").strip()
    return Path(raw) if raw else Path(f"/tmp/mlbatch-slots-{os.getuid()}")


class SlotLease:
    """Slots held by one worker; release() (or leaving the `with` block) gives them back."""

    def __init__(self, descriptors: list[int]) -> None:
        self._descriptors = descriptors
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return len(self._descriptors)

    def release(self) -> None:
        with self._lock:
            descriptors, self._descriptors = self._descriptors, []
        for fd in descriptors:
            os.close(fd)  # closing the only descriptor drops its flock

    def __enter__(self) -> SlotLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class LocalSlots:
    """Admission by vcpu across every process on this host that uses the same directory."""

    def __init__(
        self,
        capacity: int | None = None,
        directory: str | os.PathLike[str] | None = None,
        retry_interval_s: float = 0.1,
    ) -> None:
        self.capacity = capacity if capacity is not None else default_capacity()
        if self.capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {self.capacity}")
        self.directory = Path(directory) if directory is not None else default_directory()
        self.retry_interval_s = retry_interval_s
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def slots_for(self, vcpu: float) -> int:
        """Slots a worker of `vcpu` takes; a worker wider than the machine takes all of it."""
        return max(1, min(math.ceil(vcpu), self.capacity))

    def try_acquire(self, vcpu: float) -> SlotLease | None:
        """The slots for `vcpu` if all are free right now, else None (holding nothing)."""
        wanted = self.slots_for(vcpu)
        held: list[int] = []
        # Start at a different slot per attempt so concurrent requesters spread out.
        start = time.monotonic_ns() % self.capacity
        for offset in range(self.capacity):
            if len(held) == wanted:
                break
            path = self.directory / f"slot-{(start + offset) % self.capacity}.lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    for other in held:
                        os.close(other)
                    raise
                continue
            held.append(fd)
        if len(held) < wanted:
            for fd in held:
                os.close(fd)
            return None
        return SlotLease(held)

    def acquire(
        self,
        vcpu: float,
        *,
        timeout_s: float | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> SlotLease:
        """Wait for the slots for `vcpu`. Use as `with slots.acquire(2): ...`.

        Raises TimeoutError after timeout_s, InterruptedError once should_stop() is true.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            lease = self.try_acquire(vcpu)
            if lease is not None:
                return lease
            if should_stop is not None and should_stop():
                raise InterruptedError("stopped while waiting for local capacity")
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"no {self.slots_for(vcpu)} free vcpu slots of {self.capacity} within {timeout_s}s")
            time.sleep(self.retry_interval_s)
