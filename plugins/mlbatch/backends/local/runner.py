"""LocalRunner: the `ShardRunner` of the local backend, each shard a capped process group on this machine.

The shared loop (mlbatch.backends.shard_loop) decides when; this says how: spawn (spawn.py),
sample memory (watchdog.py), signal a process group, reap an exited leader (outcome.py).
Used as a context manager: what the try's workers were given on disk (their peak files) lives in a
folder of the try, removed when the try ends however it ends (done, cancelled, interrupted).
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading

from mlbatch.backends.jobs import JobRequest, ShardOutcome
from mlbatch.backends.local.groups import ProcessGroups
from mlbatch.backends.local.outcome import reap_if_exited
from mlbatch.backends.local.spawn import Shard, spawn
from mlbatch.backends.local.watchdog import watch_memory
from mlbatch.backends.local.worker_user import WorkerUser, remove_scratch
from mlbatch.backends.shard_loop import Emit
from mlbatch.backends.slots import SlotLease


class LocalRunner:
    capacity = "local capacity"

    def __init__(self, request: JobRequest, groups: ProcessGroups, emit: Emit, wake: threading.Event,
                 user: WorkerUser | None = None) -> None:
        self.request, self.groups, self.emit, self.wake, self.user = request, groups, emit, wake, user
        self.shards: dict[int, Shard] = {}
        self.scratch = tempfile.mkdtemp(prefix="mlbatch-try-")
        os.chmod(self.scratch, 0o711)  # not listable; a worker under another uid still reaches its own file

    def __enter__(self) -> LocalRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)  # a file an abandoned worker never reported

    def launch(self, index: int, lease: SlotLease) -> ShardOutcome | None:
        started = spawn(self.request, index, lease, self.groups, self.emit, self.wake, self.scratch, self.user)
        if isinstance(started, ShardOutcome):
            return started
        self.shards[index] = started
        return None

    def running(self) -> list[int]:
        return list(self.shards)

    def signal(self, signum: signal.Signals, why: str | None) -> None:
        for shard in self.shards.values():
            if why is None:
                self.groups.kill(shard.index, signum)
            elif shard.killed_for is None:
                shard.killed_for = why
                self.groups.kill(shard.index, signum)

    def watch(self) -> None:
        for shard in self.shards.values():
            watch_memory(shard, self.request.memory_mib, self.groups, self.emit)

    def reap(self) -> list[ShardOutcome]:
        ended = []
        for index in list(self.shards):
            outcome = reap_if_exited(self.request, self.shards[index], self.groups, self.emit)
            if outcome is not None:
                del self.shards[index]
                ended.append(outcome)
        return ended

    def abandon(self) -> None:
        for index, code in self.groups.abandon().items():
            if index in self.shards:
                self.shards[index].process.returncode = code
        for shard in self.shards.values():
            shard.lease.release()
            remove_scratch(shard.given)
        self.shards.clear()
