"""The docker backend: every shard of a step runs as a container of the worker image on one Docker host.

What the operator sees is what the local backend gives (the same log lines, failure blocks, vcpu
slots, cancel), with what only a container has: the image's own code and packages, hard limits
enforced by the kernel (--cpus, --memory with no swap: a worker over its budget is OOM-killed at
the limit, no watchdog), GPUs through device requests, and labels that let a retry or a restarted
task reattach to a shard's live container instead of starting a duplicate.
"""
from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from mlbatch.backends.docker import engine
from mlbatch.backends.docker.config import HostFacts, container_kwargs, local_artifact_dir, passed_environment
from mlbatch.backends.docker.follow import Follower
from mlbatch.backends.docker.isolation import prepare_writable
from mlbatch.backends.docker.reattach import Action, plan_shard
from mlbatch.backends.docker.verdict import classify_state, engine_unreachable, image_missing, start_failure
from mlbatch.backends.failures import FailureClass, format_duration, format_exit, format_mib, shard_prefix
from mlbatch.backends.jobs import JobRequest, JobResult, ShardOutcome
from mlbatch.backends.single_run import SingleRunBackend
from mlbatch.backends.slots import LocalSlots, SlotLease, default_capacity
from workers import wire
from workers.wire import encode_ranges


class DockerBackend(SingleRunBackend):
    """Runs a JobRequest as containers, one per shard, in parallel as the host's vcpu slots allow."""

    def __init__(self, log: Callable[[str], None] = print, slots: LocalSlots | None = None,
                 settings: Any = None, poll_interval_s: float = 0.2, term_grace_s: float = 5.0) -> None:
        super().__init__(log)
        self._slots = slots
        self._settings = settings  # a mlbatch.settings.DockerSettings; None: read when run() starts
        self.poll_interval_s = poll_interval_s
        self.term_grace_s = term_grace_s
        self._running: dict[int, tuple[Follower, SlotLease]] = {}

    def _stop_running(self) -> None:
        """Stop and remove every container of this try (the engine kills its processes)."""
        with self._lock:
            followers = [follower for follower, _ in self._running.values()]
        for follower in followers:
            follower.killed_for = follower.killed_for or "cancel"
            engine.remove(follower.container)

    # ---- the loop -----------------------------------------------------------

    def _run(self, request: JobRequest) -> JobResult:
        settings = self._settings
        if settings is None:
            from mlbatch.settings import load_settings

            settings = load_settings().docker
        try:
            client = engine.connect(settings.host, self._slots.capacity if self._slots else default_capacity())
        except Exception as error:  # the SDK raises DockerException, requests errors, OSError...
            reason = engine_unreachable(engine.where(settings.host), error)
            self._emit(f"{request.name}: {reason}")
            return self._result(request, {i: ShardOutcome(index=i, failure=FailureClass.infrastructure,
                                                          reason=reason) for i in request.indices}, [])
        try:
            host = HostFacts(cpus=engine.host_cpus(client), network=settings.network, pull=settings.pull,
                             passed_env=passed_environment(settings.pass_env), user=settings.user,
                             pids_limit=settings.pids_limit)
            slots = self._slots if self._slots is not None else engine.host_slots(settings.host, host.cpus)
            root = request.env.get(wire.ARTIFACTS, "")
            artifacts = local_artifact_dir(root)
            if artifacts and not engine.is_local(settings.host):
                self._emit(f"{request.name}: the artifact root {root} is a path of this machine, but the Docker "
                           f"host is {engine.where(settings.host)}: its containers write to that path on their "
                           "own machine (use an s3:// artifact root, or a folder both mount at the same path)")
            if not artifacts and host.network == "none":
                self._emit(f"{request.name}: its containers have no network ([docker] network = none) to reach the "
                           f"artifact root {root}: set [docker] network = \"host\" (MLBATCH_DOCKER_NETWORK=host)")
            return self._run_on(client, host, slots, request, artifacts)
        finally:
            client.close()

    def _run_on(self, client: Any, host: HostFacts, slots: LocalSlots, request: JobRequest,
                artifacts: Path | None) -> JobResult:
        """Run the try on a connected host; `artifacts` is the local artifact root's directory, if any."""
        if request.vcpu > host.cpus:
            self._emit(f"{request.name}: asks for {request.vcpu:g} vcpu; the Docker host has {host.cpus}, "
                       f"each container gets {host.cpus}")
        if artifacts:
            artifacts.mkdir(parents=True, exist_ok=True)  # bind-mounted: it must exist first
        if request.shard_count > 1:
            self._emit(f"{request.name}: running shards {encode_ranges(request.indices)} of {request.shard_count} "
                       f"as containers of {request.image} ({request.vcpu:g} vcpu, "
                       f"{format_mib(request.memory_mib)} each)")
        pending, outcomes = deque(request.indices), {}
        try:
            expired = self._loop(client, host, slots, request, pending, outcomes)
        except BaseException:
            self._abandon()  # interrupted: leave no container or held slot behind
            raise
        return self._result(request, outcomes, self._unstarted(request, pending, outcomes, expired))

    def _loop(self, client: Any, host: HostFacts, slots: LocalSlots, request: JobRequest,
              pending: deque[int], outcomes: dict[int, ShardOutcome]) -> str | None:
        """Start, follow and reap shards until none runs and none may start; why it stopped early, if so."""
        now = time.monotonic()
        deadline = now + request.timeout_s if request.timeout_s else None
        start_deadline = now + request.start_timeout_s if request.start_timeout_s else None
        waiting_logged: set[int] = set()
        failed, term_sent_at, ever_started = False, None, False
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline and term_sent_at is None:
                term_sent_at = now
                self._stop_all(request, "timeout", "SIGTERM")
            if term_sent_at is not None and now - term_sent_at >= self.term_grace_s:
                self._stop_all(request, None, "SIGKILL")
            if start_deadline is not None and not ever_started and now >= start_deadline:
                return "start_timeout"
            while pending and not (failed or term_sent_at or self._cancelled.is_set()):
                lease = slots.try_acquire(request.vcpu)
                if lease is None:
                    if pending[0] not in waiting_logged:
                        waiting_logged.add(pending[0])
                        self._emit(f"{shard_prefix(pending[0], request.shard_count)} waiting for "
                                   f"{slots.slots_for(request.vcpu)} vcpu of the Docker host ({slots.capacity} vcpu)")
                    break
                index = pending.popleft()
                ever_started = True
                started = self._launch(client, host, request, index, lease)
                if isinstance(started, ShardOutcome):
                    outcomes[index], failed = started, True
            failed = self._reap_exited(request, outcomes) or failed
            with self._lock:
                busy = bool(self._running)
            if not busy and (not pending or failed or term_sent_at or self._cancelled.is_set()):
                return "timeout" if term_sent_at is not None else None
            self._wake.wait(self.poll_interval_s)
            self._wake.clear()

    def _stop_all(self, request: JobRequest, reason: str | None, signal_name: str) -> None:
        with self._lock:
            followers = [follower for follower, _ in self._running.values()]
        if reason and followers:
            self._emit(f"{request.name}: past its {format_duration(request.timeout_s or 0)} timeout, stopping "
                       f"shards {encode_ranges([f.index for f in followers])} (SIGTERM, SIGKILL after "
                       f"{self.term_grace_s:g}s)")
        for follower in followers:
            if reason and follower.killed_for is None:
                follower.killed_for = reason
            engine.signal(follower.container, signal_name)

    def _unstarted(self, request: JobRequest, pending: deque[int], outcomes: dict[int, ShardOutcome],
                   stopped: str | None) -> list[int]:
        """Outcomes for shards that never started when a deadline or cancel explains it; the rest not_started."""
        reasons = {
            "start_timeout": (FailureClass.infrastructure, "never started: no capacity on the Docker host within its "
                              f"{format_duration(request.start_timeout_s or 0)} start_timeout"),
            "timeout": (FailureClass.timeout, f"not started within its {format_duration(request.timeout_s or 0)} "
                        "timeout (waiting for capacity on the Docker host)"),
        }
        explained = (FailureClass.infrastructure, "cancelled before it started") if self._cancelled.is_set() \
            else reasons.get(stopped or "")
        if explained is not None:
            for index in pending:
                outcomes[index] = ShardOutcome(index=index, failure=explained[0], reason=explained[1])
            return []
        if pending:
            self._emit(f"{request.name}: shards {encode_ranges(list(pending))} not started because a shard failed")
        return list(pending)

    def _abandon(self) -> None:
        with self._lock:
            running, self._running = dict(self._running), {}
        for follower, lease in running.values():
            engine.remove(follower.container)
            lease.release()

    # ---- one shard ----------------------------------------------------------

    def _launch(self, client: Any, host: HostFacts, request: JobRequest, index: int,
                lease: SlotLease) -> Follower | ShardOutcome:
        """Adopt or collect this shard's container from an earlier try, else start a new one."""
        prefix = shard_prefix(index, request.shard_count)
        try:
            container, how = self._container_for(client, host, request, index)
        except Exception as error:  # docker.errors.APIError/ImageNotFound, or the engine went away
            lease.release()
            outcome = ShardOutcome(index=index, failure=FailureClass.infrastructure,
                                   reason=start_failure(request.image, error), final=image_missing(error))
            self._emit(f"{prefix} could not start: {outcome.reason}")
            self._emit(self._block(request, outcome))
            return outcome
        follower = Follower(container, index, prefix, self._emit, self._wake)
        with self._lock:
            self._running[index] = (follower, lease)
        if self._cancelled.is_set():  # cancel() came while it was being started
            follower.killed_for = "cancel"
            engine.remove(container)
        self._emit(f"{prefix} {how} container {container.short_id} ({request.image}): {request.vcpu:g} vcpu, "
                   f"{format_mib(request.memory_mib)} memory limit")
        return follower

    def _container_for(self, client: Any, host: HostFacts, request: JobRequest, index: int) -> tuple[Any, str]:
        found = engine.existing(client, request.identity, index)
        plan = plan_shard([f for _, f in found])
        by_id = {f.id: c for c, f in found}
        for stale in plan.stale:
            engine.remove(by_id[stale.id])
        if plan.action is Action.adopt:
            return by_id[plan.target.id], "reattached to running"
        if plan.action is Action.collect:
            return by_id[plan.target.id], "collecting finished"
        kwargs = container_kwargs(request, index, host)
        if request.gpu:
            kwargs["device_requests"] = engine.gpu_request(request.gpu)
        prepare_writable(kwargs)
        container = engine.create(client, kwargs, pull=host.pull)
        try:
            container.start()
        except BaseException:
            engine.remove(container)
            raise
        return container, "started"

    def _reap_exited(self, request: JobRequest, outcomes: dict[int, ShardOutcome]) -> bool:
        """Collect every container that has exited; True if one of them failed."""
        with self._lock:
            done = [(i, f, lease) for i, (f, lease) in self._running.items() if f.exited.is_set()]
        failed = False
        for index, follower, lease in done:
            follower.finish()
            state = engine.final_state(follower.container)
            engine.remove(follower.container)  # its logs and state are read: nothing else needs it
            with self._lock:
                del self._running[index]
            lease.release()
            outcomes[index] = outcome = self._outcome(request, index, follower, state)
            failed = failed or not outcome.ok
        return failed

    def _outcome(self, request: JobRequest, index: int, follower: Follower, state: dict[str, Any]) -> ShardOutcome:
        if follower.exit_code is not None:
            state.setdefault("ExitCode", follower.exit_code)
        tail = list(follower.stderr_tail)
        failure, reason = classify_state(state, killed_for=follower.killed_for, memory_mib=request.memory_mib,
                                         timeout_s=request.timeout_s, stderr_tail=tail)
        peak = follower.peak_mib
        if failure is FailureClass.oom:
            peak = max(peak, float(request.memory_mib))  # the kernel killed it at the limit
        duration = time.monotonic() - follower.started
        exit_code = state.get("ExitCode")
        outcome = ShardOutcome(index=index, exit_code=exit_code, peak_rss_mib=round(peak, 1),
                               duration_s=round(duration, 3), failure=failure, reason=reason, stderr_tail=tail)
        verdict = "ok" if failure is None else f"{failure.value}: {reason}"
        self._emit(f"{follower.prefix} finished container {follower.container.short_id} in {duration:.1f}s, "
                   f"exit {format_exit(exit_code, None)}, peak {format_mib(peak)}: {verdict}")
        if failure is not None:
            self._emit(self._block(request, outcome))
        return outcome

    # ---- plumbing -----------------------------------------------------------

    @staticmethod
    def _result(request: JobRequest, outcomes: dict[int, ShardOutcome], not_started: list[int]) -> JobResult:
        return JobResult(name=request.name, shard_count=request.shard_count, memory_mib=request.memory_mib,
                         outcomes=[outcomes[i] for i in sorted(outcomes)], not_started=not_started)

    @staticmethod
    def _block(request: JobRequest, outcome: ShardOutcome) -> str:
        return DockerBackend._result(request, {outcome.index: outcome}, []).failure_report()
