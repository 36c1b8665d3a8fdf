"""ProcessGroups: the process groups of a backend's running shards, signalled and reaped under one lock.

Each shard is a session leader, so its pid is its group id and one killpg stops its whole
tree. A group is forgotten only when its leader is reaped: until then the leader's pid
keeps the group id from being reused, so a kill can never hit a stranger.
"""
from __future__ import annotations

import os
import signal
import threading
from typing import Any


def killpg(pgid: int, signum: int) -> bool:
    try:
        os.killpg(pgid, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False


class ProcessGroups:
    def __init__(self) -> None:
        # Reentrant: cancel() may run in a signal handler on the thread that holds it.
        self._lock = threading.RLock()
        self._groups: dict[int, int] = {}  # shard index -> process group id, while not reaped

    def add(self, index: int, pgid: int) -> None:
        with self._lock:
            self._groups[index] = pgid

    def kill(self, index: int, signum: int) -> None:
        """Signal one shard's group, if it is still ours."""
        with self._lock:
            if index in self._groups:
                killpg(self._groups[index], signum)

    def kill_all(self, signum: int) -> None:
        with self._lock:
            for pgid in list(self._groups.values()):
                killpg(pgid, signum)

    def reap(self, index: int, pid: int) -> tuple[int, Any]:
        """Kill what the exited leader left in its group (background children), then reap it: (status, rusage)."""
        with self._lock:
            killpg(pid, signal.SIGKILL)
            del self._groups[index]
            _, status, usage = os.wait4(pid, 0)
        return status, usage

    def abandon(self) -> dict[int, int]:
        """SIGKILL and reap every group (an interrupted run): shard index -> exit code of those reaped."""
        with self._lock:
            groups, self._groups = dict(self._groups), {}
            for pgid in groups.values():
                killpg(pgid, signal.SIGKILL)
        codes: dict[int, int] = {}
        for index, pid in groups.items():
            try:
                _, status, _ = os.wait4(pid, 0)
            except ChildProcessError:
                continue
            codes[index] = os.waitstatus_to_exitcode(status)
        return codes
