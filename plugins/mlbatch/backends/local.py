"""The embedded backend: every shard of a step runs as its own capped OS process.

Nothing of the worker runs inside the calling (Airflow task) process: each shard
is a child in its own process group, so a crash, a memory blow-up or a kill takes
down that worker and nothing else, and the whole tree of a shard can be stopped
with one killpg.

Caps:
- vcpu: admission through LocalSlots (host-wide, across task processes) plus
  thread caps (OMP_NUM_THREADS & co) so numeric libraries do not spawn a thread
  per core of the machine.
- memory: a watchdog samples the resident memory of each shard's process tree and
  SIGKILLs the group once it is over budget. Not RLIMIT_AS: numpy/torch/jemalloc
  reserve large virtual ranges they never touch, so an address-space limit kills
  healthy workers. Not cgroups: their memory controller is not writable for an
  unprivileged user on most hosts (a hard cgroup limit where the host offers one
  is a future improvement). The watchdog samples every poll interval, so a very
  fast allocation can overshoot the budget briefly before it is caught.
- time: one deadline for the whole try; past it every process group gets SIGTERM,
  then SIGKILL after a grace period.
- parent death: PR_SET_PDEATHSIG makes a worker die with the task process, so a
  task killed with SIGKILL leaves no orphan worker behind.

Not used locally: request.image (argv runs with this host's interpreter and
packages) and GPU partitioning (a worker sees every GPU of the host).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import IO, Callable

import psutil
from workers import wire
from workers.wire import encode_ranges

from mlbatch.backends.slots import LocalSlots, SlotLease
from mlbatch.backends.threads import THREAD_CAP_VARS, thread_env  # noqa: F401  (THREAD_CAP_VARS: tests)
from mlbatch.backends.failures import FailureClass, classify_exit, failure_block, format_duration, format_exit, format_mib
from mlbatch.backends.jobs import JobRequest, JobResult, ShardOutcome

# Inherited variables a worker must not see: Airflow's own configuration and
# secrets (database URL, connections, variables). Workers know nothing of Airflow,
# and a worker on AWS Batch or ECS would not have them either.
_DROPPED_ENV_PREFIXES = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")
STDERR_TAIL_LINES = 20
_MAX_LINE_BYTES = 64 * 1024
_READER_JOIN_S = 5.0
_MIB = 1024 * 1024
_PR_SET_PDEATHSIG = 1


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


def worker_env(request: JobRequest, index: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of shard `index`: inherited env, thread caps, request.env, shard identity."""
    inherited = dict(os.environ if base is None else base)
    env = {k: v for k, v in inherited.items() if not k.startswith(_DROPPED_ENV_PREFIXES)}
    env.update(thread_env(request.vcpu))
    env["PYTHONUNBUFFERED"] = "1"  # stream log lines as they are printed, not at exit
    env.update(request.env)
    env.update(wire.shard_env(request.shard_count, index))
    return env


def worker_argv(request: JobRequest) -> list[str]:
    """The request's entrypoint + command; 'python' means the interpreter running mlbatch, not the PATH's."""
    argv = request.argv
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


@dataclass
class _Shard:
    index: int
    prefix: str
    process: subprocess.Popen[bytes]
    lease: SlotLease
    started: float
    tree: psutil.Process | None
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=STDERR_TAIL_LINES))
    readers: list[threading.Thread] = field(default_factory=list)
    peak_mib: float = 0.0
    # Why we killed it, if we did: "oom", "timeout" or "cancel".
    killed_for: str | None = None

    @property
    def pid(self) -> int:
        return self.process.pid


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
        self._groups: dict[int, int] = {}  # shard index -> process group id, while not reaped
        self._cancelled = threading.Event()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._run_thread: int | None = None

    # ---- public API ---------------------------------------------------------

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
            for pgid in list(self._groups.values()):
                _killpg(pgid, signal.SIGKILL)
            waiting_thread = self._run_thread
        if waiting_thread is not None and waiting_thread != threading.get_ident():
            self._idle.wait(wait_s)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    # ---- the loop -----------------------------------------------------------

    def _run(self, request: JobRequest) -> JobResult:
        slots = self._slots if self._slots is not None else LocalSlots()
        pending = deque(request.indices)
        running: dict[int, _Shard] = {}
        outcomes: dict[int, ShardOutcome] = {}
        deadline = time.monotonic() + request.timeout_s if request.timeout_s is not None else None
        self._start_expired = False

        if request.gpu:
            self._emit(f"{request.name}: asks for {request.gpu} GPU; local workers share every GPU of this host")
        if request.shard_count > 1:
            self._emit(
                f"{request.name}: running shards {encode_ranges(request.indices)} of {request.shard_count} "
                f"as local processes ({request.vcpu:g} vcpu, {format_mib(request.memory_mib)} each)"
            )

        try:
            timed_out = self._loop(request, slots, pending, running, outcomes, deadline)
        except BaseException:
            # Interrupted (Airflow's execution_timeout raises in this thread): leave no
            # worker, zombie or held slot behind, then let the exception through.
            self._abandon(running)
            raise

        not_started: list[int] = []
        for index in pending:
            if self._cancelled.is_set():
                outcomes[index] = ShardOutcome(
                    index=index, failure=FailureClass.infrastructure, reason="cancelled before it started"
                )
            elif self._start_expired:
                limit = format_duration(request.start_timeout_s or 0)
                outcomes[index] = ShardOutcome(
                    index=index,
                    failure=FailureClass.infrastructure,
                    reason=f"never started: no local capacity within its {limit} start_timeout",
                )
            elif timed_out:
                limit = format_duration(request.timeout_s or 0)
                outcomes[index] = ShardOutcome(
                    index=index,
                    failure=FailureClass.timeout,
                    reason=f"not started within its {limit} timeout (waiting for local capacity)",
                )
            else:
                not_started.append(index)
        if not_started:
            self._emit(f"{request.name}: shards {encode_ranges(not_started)} not started because a shard failed")
        return JobResult(
            name=request.name,
            shard_count=request.shard_count,
            memory_mib=request.memory_mib,
            outcomes=[outcomes[i] for i in sorted(outcomes)],
            not_started=not_started,
        )

    def _loop(
        self,
        request: JobRequest,
        slots: LocalSlots,
        pending: deque[int],
        running: dict[int, _Shard],
        outcomes: dict[int, ShardOutcome],
        deadline: float | None,
    ) -> bool:
        """Launch, watch and reap shards until none runs and none may start. True if the deadline passed."""
        waiting_logged: set[int] = set()
        failed = timed_out = False
        ever_started = False
        start_deadline = (time.monotonic() + request.start_timeout_s) if request.start_timeout_s else None
        term_sent_at: float | None = None
        while True:
            now = time.monotonic()
            if self._cancelled.is_set():
                for shard in running.values():
                    if shard.killed_for is None:
                        shard.killed_for = "cancel"
                        self._kill(shard, signal.SIGKILL)
            elif deadline is not None and now >= deadline and not timed_out:
                timed_out = True
                term_sent_at = now
                if running:
                    self._emit(
                        f"{request.name}: past its {format_duration(request.timeout_s or 0)} timeout, "
                        f"stopping shards {encode_ranges(sorted(running))} (SIGTERM, SIGKILL after {self.term_grace_s:g}s)"
                    )
                for shard in running.values():
                    if shard.killed_for is None:
                        shard.killed_for = "timeout"
                        self._kill(shard, signal.SIGTERM)
            if term_sent_at is not None and now - term_sent_at >= self.term_grace_s:
                for shard in running.values():
                    self._kill(shard, signal.SIGKILL)

            if start_deadline is not None and not ever_started and now >= start_deadline:
                self._start_expired = True  # nothing could start in time: give up this try
                break

            stop_launching = failed or timed_out or self._cancelled.is_set()
            while pending and not stop_launching:
                index = pending[0]
                lease = slots.try_acquire(request.vcpu)
                if lease is None:
                    if index not in waiting_logged:
                        waiting_logged.add(index)
                        self._emit(
                            f"{self._prefix(request, index)} waiting for {slots.slots_for(request.vcpu)} vcpu "
                            f"of local capacity ({slots.capacity} vcpu on this host)"
                        )
                    break
                pending.popleft()
                ever_started = True
                started = self._spawn(request, index, lease)
                if isinstance(started, ShardOutcome):
                    outcomes[index] = started
                    failed = stop_launching = True
                else:
                    running[index] = started
                    if self._cancelled.is_set():  # cancel() came while it was being spawned
                        started.killed_for = "cancel"
                        self._kill(started, signal.SIGKILL)

            for shard in running.values():
                self._watch_memory(request, shard)

            for index in list(running):
                outcome = self._reap_if_exited(request, running[index])
                if outcome is not None:
                    del running[index]
                    outcomes[index] = outcome
                    if not outcome.ok:
                        failed = True

            if not running and (not pending or failed or timed_out or self._cancelled.is_set()):
                break
            self._wake.wait(self.poll_interval_s)
            self._wake.clear()
        return timed_out

    def _abandon(self, running: dict[int, _Shard]) -> None:
        with self._lock:
            groups, self._groups = dict(self._groups), {}
            for pgid in groups.values():
                _killpg(pgid, signal.SIGKILL)
        for index, pid in groups.items():
            try:
                _, status, _ = os.wait4(pid, 0)
            except ChildProcessError:
                continue
            if index in running:
                running[index].process.returncode = os.waitstatus_to_exitcode(status)
        for shard in running.values():
            shard.lease.release()
        running.clear()

    # ---- one shard ----------------------------------------------------------

    def _spawn(self, request: JobRequest, index: int, lease: SlotLease) -> _Shard | ShardOutcome:
        prefix = self._prefix(request, index)
        argv = worker_argv(request)
        started = time.monotonic()
        try:
            process = subprocess.Popen(
                argv,
                env=worker_env(request, index),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # own process group: one killpg stops the whole tree
                preexec_fn=_die_with_parent(os.getpid()),
                close_fds=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            lease.release()
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            outcome = ShardOutcome(
                index=index,
                duration_s=time.monotonic() - started,
                failure=FailureClass.infrastructure,
                reason=f"could not start {argv[0]!r}: {detail}",
            )
            self._emit(f"{prefix} could not start: {outcome.reason}")
            self._emit(self._block(request, outcome))
            return outcome

        with self._lock:
            self._groups[index] = process.pid  # session leader: its pid is the group id
        try:
            tree: psutil.Process | None = psutil.Process(process.pid)
        except psutil.Error:
            tree = None
        shard = _Shard(index=index, prefix=prefix, process=process, lease=lease, started=started, tree=tree)
        self._emit(
            f"{prefix} started pid {process.pid}: {request.vcpu:g} vcpu, "
            f"{format_mib(request.memory_mib)} memory budget"
        )
        assert process.stdout is not None and process.stderr is not None
        for stream, tail in ((process.stdout, None), (process.stderr, shard.stderr_tail)):
            reader = threading.Thread(
                target=self._pump, args=(stream, prefix, tail), name=f"mlbatch-log-{index}", daemon=True
            )
            reader.start()
            shard.readers.append(reader)
        return shard

    def _watch_memory(self, request: JobRequest, shard: _Shard) -> None:
        rss_mib = _tree_rss_mib(shard.tree)
        if rss_mib is None:
            return
        shard.peak_mib = max(shard.peak_mib, rss_mib)
        if rss_mib > request.memory_mib and shard.killed_for is None:
            shard.killed_for = "oom"
            self._emit(
                f"{shard.prefix} over its memory budget ({format_mib(rss_mib)} > {format_mib(request.memory_mib)}): "
                "killing its process group"
            )
            self._kill(shard, signal.SIGKILL)

    def _reap_if_exited(self, request: JobRequest, shard: _Shard) -> ShardOutcome | None:
        # Look without reaping first: until it is reaped the leader's pid keeps the
        # group id from being reused, so killing the group cannot hit a stranger.
        try:
            exited = os.waitid(os.P_PID, shard.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            exited = None
        if exited is None:
            return None
        with self._lock:
            # Anything the worker left behind in its group (background children) goes too.
            _killpg(shard.pid, signal.SIGKILL)
            del self._groups[shard.index]
            _, status, usage = os.wait4(shard.pid, 0)
        shard.process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        duration = time.monotonic() - shard.started
        for reader in shard.readers:
            reader.join(_READER_JOIN_S)
        shard.lease.release()

        exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        signum = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        peak = max(shard.peak_mib, usage.ru_maxrss / 1024)  # ru_maxrss is in KiB on Linux
        # A SIGKILL cannot be handled: exit 0 means it finished before our kill landed.
        finished_anyway = exit_code == 0 and shard.killed_for in ("oom", "cancel")
        killed_for = None if finished_anyway else shard.killed_for
        tail = list(shard.stderr_tail)
        failure, reason = classify_exit(
            exit_code,
            signum,
            watchdog_oom=killed_for == "oom",
            timed_out=killed_for == "timeout",
            cancelled=killed_for == "cancel",
            peak_rss_mib=peak,
            memory_mib=request.memory_mib,
            timeout_s=request.timeout_s,
            stderr_tail=tail,
        )
        outcome = ShardOutcome(
            index=shard.index,
            exit_code=exit_code,
            signal=signum,
            peak_rss_mib=round(peak, 1),
            duration_s=round(duration, 3),
            failure=failure,
            reason=reason,
            stderr_tail=tail,
        )
        verdict = "ok" if failure is None else f"{failure.value}: {reason}"
        self._emit(
            f"{shard.prefix} finished pid {shard.pid} in {duration:.1f}s, exit {format_exit(exit_code, signum)}, "
            f"peak {format_mib(peak)}: {verdict}"
        )
        if failure is not None:
            self._emit(self._block(request, outcome))
        return outcome

    # ---- plumbing -----------------------------------------------------------

    def _kill(self, shard: _Shard, signum: int) -> None:
        with self._lock:
            if shard.index in self._groups:
                _killpg(shard.pid, signum)

    def _pump(self, stream: IO[bytes], prefix: str, tail: deque[str] | None) -> None:
        with stream:
            for raw in iter(lambda: stream.readline(_MAX_LINE_BYTES), b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if tail is not None:
                    tail.append(line)
                self._emit(f"{prefix} {line}")
        # End of output almost always means the worker exited: reap it now, not on the next tick.
        self._wake.set()

    def _emit(self, message: str) -> None:
        with self._log_lock:
            try:
                self._log(message)
            except Exception:  # a broken log sink must not stall the pipes (and so the worker)
                pass

    @staticmethod
    def _prefix(request: JobRequest, index: int) -> str:
        return "[worker]" if request.shard_count == 1 else f"[shard {index}/{request.shard_count}]"

    @staticmethod
    def _block(request: JobRequest, outcome: ShardOutcome) -> str:
        assert outcome.failure is not None
        return failure_block(
            failure=outcome.failure,
            reason=outcome.reason,
            shard_index=outcome.index,
            shard_count=request.shard_count,
            exit_code=outcome.exit_code,
            signal=outcome.signal,
            stderr_tail=outcome.stderr_tail,
            name=request.name,
            peak_rss_mib=outcome.peak_rss_mib if outcome.failure is FailureClass.oom else None,
            memory_mib=request.memory_mib,
        )


def _killpg(pgid: int, signum: int) -> bool:
    try:
        os.killpg(pgid, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _tree_rss_mib(root: psutil.Process | None) -> float | None:
    """Resident memory of a process and all its descendants, in MiB."""
    if root is None:
        return None
    try:
        members = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass  # exited between listing and sampling
    return total / _MIB
