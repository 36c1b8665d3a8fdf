"""Following one container while it runs: its output lines into the task log, its memory peak, its end.

Each follower has a few daemon threads, one per blocking stream: stdout and stderr logs (two
streams, so stderr alone feeds the failure block's tail), the memory peak (the cgroup's own mark,
else the engine's stats) and the wait for its exit. The backend's loop only looks at `exited`.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable

from mlbatch.backends.docker import memory

STDERR_TAIL_LINES = 20
_JOIN_S = 5.0
_CGROUP_POLL_S = 0.05  # the mark only rises: a read this often misses at most the growth of the last 50 ms
_MIB = 1024 * 1024
MAX_LINE_BYTES = 64 * 1024  # as the local backend: a longer line is logged in pieces of this size


def lines_of(chunks: Iterable[bytes], limit: int = MAX_LINE_BYTES) -> Iterable[str]:
    """Text lines from a stream of byte chunks (Docker frames are writes, not lines), each at most `limit` bytes.

    A longer line (a progress bar redrawn with \r and no newline) comes out in `limit`-byte pieces as
    the local backend gives it; each byte is scanned once, so a line of any length costs linear time.
    """
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        start = 0
        while True:
            end = pending.find(b"\n", start, start + limit)
            if end >= 0:
                yield _text(pending[start:end])
                start = end + 1
            elif len(pending) - start >= limit:
                yield _text(pending[start:start + limit])
                start += limit
            else:
                break
        del pending[:start]  # what is left is shorter than one line: the copy stays small
    if pending:
        yield _text(pending)


def _text(raw: bytes | bytearray) -> str:
    return bytes(raw).decode("utf-8", "replace").rstrip("\r")


def working_set_mib(stats: dict[str, Any]) -> float | None:
    """Memory in use from one stats sample, as `docker stats` counts it (page cache not counted)."""
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage")
    if usage is None:
        return None
    detail = memory.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))  # cgroup v1, v2
    return max(0, usage - cache) / _MIB


class Follower:
    """One container's threads; `exited` is set once its wait returned (or the container vanished)."""

    def __init__(self, container: Any, index: int, prefix: str, emit: Callable[[str], None],
                 wake: threading.Event) -> None:
        self.container = container
        self.index = index
        self.prefix = prefix
        self.started = time.monotonic()
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self.peak_mib = 0.0
        self.exit_code: int | None = None
        self.exited = threading.Event()
        self.killed_for: str | None = None  # "timeout" or "cancel" once we stopped it
        self._emit = emit
        self._wake = wake
        self._threads = [
            threading.Thread(target=self._pump, args=(False,), daemon=True, name="mlbatch-docker-out"),
            threading.Thread(target=self._pump, args=(True,), daemon=True, name="mlbatch-docker-err"),
            threading.Thread(target=self._sample, daemon=True, name="mlbatch-docker-stats"),
            threading.Thread(target=self._wait, daemon=True, name="mlbatch-docker-wait"),
        ]
        for thread in self._threads:
            thread.start()

    def finish(self) -> None:
        """After the exit: let the log streams drain (they end with the container's output)."""
        for thread in self._threads[:2]:
            thread.join(_JOIN_S)

    def _pump(self, stderr: bool) -> None:
        try:
            chunks = self.container.logs(stream=True, follow=True, stdout=not stderr, stderr=stderr)
            for line in lines_of(chunks):
                if stderr:
                    self.stderr_tail.append(line)
                self._emit(f"{self.prefix} {line}")
        except Exception:  # the container was removed under us (cancel): its end is reported by _wait
            pass

    def _sample(self) -> None:
        path = memory.peak_file(str(getattr(self.container, "id", "") or ""))
        if path is not None:
            self._sample_cgroup(path)
        else:
            self._sample_stats()

    def _sample_cgroup(self, path: Path) -> None:
        """Read the kernel's high-water mark until the exit (the cgroup goes with the container)."""
        while True:
            mib = memory.read_peak_mib(path)
            if mib is None:
                return
            self.peak_mib = max(self.peak_mib, mib)
            if self.exited.wait(_CGROUP_POLL_S):
                return

    def _sample_stats(self) -> None:
        try:
            for stats in self.container.stats(stream=True, decode=True):
                mib = working_set_mib(stats)
                if mib is not None:
                    self.peak_mib = max(self.peak_mib, mib)
                if self.exited.is_set():
                    return
        except Exception:  # stats are a nicety: the container's end is what counts
            pass

    def _wait(self) -> None:
        try:
            self.exit_code = int(self.container.wait()["StatusCode"])
        except Exception:  # removed before it could be waited for (cancel)
            self.exit_code = None
        self.exited.set()
        self._wake.set()
