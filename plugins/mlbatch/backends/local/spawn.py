"""Starting one shard as its own capped OS process: its argv, its environment, its log pumps.

Each shard is a child in its own session (one killpg stops its whole tree), with a
parent-death signal so that a task killed with SIGKILL leaves no orphan worker behind.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import IO, Callable

import psutil
from workers import wire

from mlbatch.backends.environment import shard_command, shard_environment
from mlbatch.backends.failures import FailureClass, format_mib, shard_prefix
from mlbatch.backends.jobs import JobRequest, ShardOutcome
from mlbatch.backends.local import privacy
from mlbatch.backends.local import worker_user as switch
from mlbatch.backends.local.groups import ProcessGroups
from mlbatch.backends.local.worker_user import WorkerUser
from mlbatch.backends.slots import SlotLease

STDERR_TAIL_LINES = 20
_MAX_LINE_BYTES = 64 * 1024
_PR_SET_PDEATHSIG = 1

Emit = Callable[[str], None]


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return libc.prctl


# Resolved once in the parent: the function that runs between fork and exec must
# not import or look anything up.
_PRCTL = _load_prctl()


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """preexec_fn: SIGKILL this child when the thread that spawned it dies.

    The death signal follows the spawning *thread*; run() spawns and reaps from
    the same thread and does not return before its children are gone.
    """
    if _PRCTL is None:
        return None
    prctl = _PRCTL

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return set_death_signal


def worker_env(request: JobRequest, index: int) -> dict[str, str]:
    """Environment of shard `index`: this process's environment (less Airflow's), then the shard's own."""
    return shard_environment(request, wire.shard_env(request.shard_count, index), passed=os.environ)


def worker_argv(request: JobRequest, index: int | None = None) -> list[str]:
    """The request's entrypoint + command; 'python' means the interpreter running mlbatch, not the PATH's."""
    argv = request.argv if index is None else wire.container_argv(request.entrypoint, shard_command(request, index))
    if request.step_output is None and argv[0] in ("python", "python3"):  # a command step runs as written
        argv[0] = sys.executable
    return argv


@dataclass
class Shard:
    """A running shard: its process, its slot lease, what its log pumps and the watchdog saw."""

    index: int
    prefix: str
    process: subprocess.Popen[bytes]
    lease: SlotLease
    started: float
    tree: psutil.Process | None
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=STDERR_TAIL_LINES))
    readers: list[threading.Thread] = field(default_factory=list)
    peak_mib: float = 0.0
    peak_file: str | None = None  # where the worker writes its own peak at exit (wire.PEAK_FILE)
    given: dict[str, str] | None = None  # HOME, TMPDIR... of a worker switched to another uid
    # Why we killed it, if we did: "oom", "timeout" or "cancel".
    killed_for: str | None = None

    @property
    def pid(self) -> int:
        return self.process.pid


def spawn(request: JobRequest, index: int, lease: SlotLease, groups: ProcessGroups, emit: Emit,
          wake: threading.Event, peak_dir: str | None = None, user: WorkerUser | None = None) -> Shard | ShardOutcome:
    """Start shard `index` (as `user` when given), or say why it could not start (infrastructure; lease released)."""
    prefix = shard_prefix(index, request.shard_count)
    argv = worker_argv(request, index)
    started = time.monotonic()
    privacy.hide_from_children()
    env = worker_env(request, index)
    env[wire.PEAK_FILE] = peak_file = _peak_file(peak_dir)
    given: dict[str, str] | None = None
    try:
        if user is not None:
            env.update(given := switch.prepare(user, request, index, peak_file, argv[0]))
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # own process group: one killpg stops the whole tree
            preexec_fn=privacy.without_ptrace(_die_with_parent(os.getpid()),
                                              switch_to=None if user is None else (user.uid, user.gid)),
            close_fds=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        lease.release()
        os.unlink(peak_file)
        switch.remove_scratch(given)
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        missing = wire.COMMAND_NOT_FOUND_EXIT_CODE if isinstance(exc, FileNotFoundError) else None  # as a shell says
        as_user = f" as uid {user.uid} ([local] user)" if user is not None else ""
        return ShardOutcome(index=index, duration_s=time.monotonic() - started, failure=FailureClass.infrastructure,
                            reason=f"could not start {argv[0]!r}{as_user}: {detail}", exit_code=missing)
    groups.add(index, process.pid)  # session leader: its pid is the group id
    try:
        tree: psutil.Process | None = psutil.Process(process.pid)
    except psutil.Error:
        tree = None
    shard = Shard(index=index, prefix=prefix, process=process, lease=lease, started=started, tree=tree,
                  peak_file=peak_file, given=given)
    as_user = f" as uid {user.uid}" if user is not None else ""
    emit(f"{prefix} started pid {process.pid}{as_user}: {request.vcpu:g} vcpu, "
         f"{format_mib(request.memory_mib)} memory budget")
    assert process.stdout is not None and process.stderr is not None
    for stream, tail in ((process.stdout, None), (process.stderr, shard.stderr_tail)):
        reader = threading.Thread(target=_pump, args=(stream, prefix, tail, emit, wake),
                                  name=f"mlbatch-log-{index}", daemon=True)
        reader.start()
        shard.readers.append(reader)
    return shard


def _peak_file(folder: str | None) -> str:
    """An empty private file for the worker's peak (the rusage of a child starts at this process's peak)."""
    handle, path = tempfile.mkstemp(prefix="mlbatch-peak-", suffix=".txt", dir=folder)
    os.close(handle)
    return path


def _pump(stream: IO[bytes], prefix: str, tail: deque[str] | None, emit: Emit, wake: threading.Event) -> None:
    with stream:
        for raw in iter(lambda: stream.readline(_MAX_LINE_BYTES), b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if tail is not None:
                tail.append(line)
            emit(f"{prefix} {line}")
    # End of output almost always means the worker exited: reap it now, not on the next tick.
    wake.set()
