"""ContainerRunner: the `ShardRunner` of the docker backend, each shard a container on one Docker host.

The shared loop (mlbatch.backends.shard_loop) decides when; this says how: adopt, collect or
start a shard's container (reattach.py, config.py, client.py), follow its logs and memory
(follow.py), signal it, and turn its final state into a classified outcome (outcome.py).
Thread-safe where cancel() reaches it from another thread (`remove_all`).
"""
from __future__ import annotations

import signal
import threading
import time
from typing import Any

from mlbatch.backends.docker import client as engine_client
from mlbatch.backends.docker.config import HostFacts, container_kwargs
from mlbatch.backends.docker.isolation import prepare_writable
from mlbatch.backends.docker.follow import Follower
from mlbatch.backends.docker.outcome import classify_state, image_missing, start_failure
from mlbatch.backends.docker.reattach import Action, plan_shard
from mlbatch.backends.failures import FailureClass, format_exit, format_mib, shard_prefix
from mlbatch.backends.jobs import JobRequest, ShardOutcome
from mlbatch.backends.shard_loop import Emit
from mlbatch.backends.slots import SlotLease


class ContainerRunner:
    capacity = "capacity on the Docker host"

    def __init__(self, client: Any, host: HostFacts, request: JobRequest, emit: Emit, wake: threading.Event,
                 lock: threading.RLock) -> None:
        self.client, self.host, self.request, self.emit, self.wake = client, host, request, emit, wake
        self._lock = lock  # the backend's: cancel() removes containers from another thread
        self._running: dict[int, tuple[Follower, SlotLease]] = {}

    def launch(self, index: int, lease: SlotLease) -> ShardOutcome | None:
        """Adopt or collect this shard's container from an earlier try, else start a new one."""
        prefix = shard_prefix(index, self.request.shard_count)
        try:
            container, how = self._container_for(index)
        except Exception as error:  # docker.errors.APIError/ImageNotFound, or the engine went away
            lease.release()
            return ShardOutcome(index=index, failure=FailureClass.infrastructure,
                                reason=start_failure(self.request.image, error), final=image_missing(error))
        follower = Follower(container, index, prefix, self.emit, self.wake)
        with self._lock:
            self._running[index] = (follower, lease)
        self.emit(f"{prefix} {how} container {container.short_id} ({self.request.image}): "
                  f"{self.request.vcpu:g} vcpu, {format_mib(self.request.memory_mib)} memory limit")
        return None

    def _container_for(self, index: int) -> tuple[Any, str]:
        found = engine_client.existing(self.client, self.request.identity, index)
        plan = plan_shard([f for _, f in found])
        by_id = {f.id: c for c, f in found}
        for stale in plan.stale:
            engine_client.remove(by_id[stale.id])
        if plan.action is Action.adopt:
            return by_id[plan.target.id], "reattached to running"
        if plan.action is Action.collect:
            return by_id[plan.target.id], "collecting finished"
        kwargs = container_kwargs(self.request, index, self.host)
        if self.request.gpu:
            kwargs["device_requests"] = engine_client.gpu_request(self.request.gpu)
        prepare_writable(kwargs)
        container = engine_client.create(self.client, kwargs, pull=self.host.pull)
        try:
            container.start()
        except BaseException:
            engine_client.remove(container)
            raise
        return container, "started"

    def running(self) -> list[int]:
        with self._lock:
            return list(self._running)

    def _followers(self) -> list[Follower]:
        with self._lock:
            return [follower for follower, _ in self._running.values()]

    def signal(self, signum: signal.Signals, why: str | None) -> None:
        for follower in self._followers():
            if why is None:
                engine_client.signal(follower.container, signum.name)
            elif follower.killed_for is None:
                follower.killed_for = why
                engine_client.signal(follower.container, signum.name)

    def watch(self) -> None:
        """Nothing to do: the kernel enforces the memory limit, and each follower samples its own peak."""

    def remove_all(self, why: str) -> None:
        """Stop and remove every container (the engine kills its processes); they are reaped as usual."""
        for follower in self._followers():
            follower.killed_for = follower.killed_for or why
            engine_client.remove(follower.container)

    def reap(self) -> list[ShardOutcome]:
        with self._lock:
            done = [(i, f, lease) for i, (f, lease) in self._running.items() if f.exited.is_set()]
        ended = []
        for index, follower, lease in done:
            follower.finish()
            state = engine_client.final_state(follower.container)
            engine_client.remove(follower.container)  # its logs and state are read: nothing else needs it
            with self._lock:
                del self._running[index]
            lease.release()
            ended.append(self._outcome(index, follower, state))
        return ended

    def _outcome(self, index: int, follower: Follower, state: dict[str, Any]) -> ShardOutcome:
        request = self.request
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
        verdict = "ok" if failure is None else f"{failure.value}: {reason}"
        self.emit(f"{follower.prefix} finished container {follower.container.short_id} in {duration:.1f}s, "
                  f"exit {format_exit(exit_code, None)}, peak {format_mib(peak)}: {verdict}")
        return ShardOutcome(index=index, exit_code=exit_code, peak_rss_mib=round(peak, 1),
                            duration_s=round(duration, 3), failure=failure, reason=reason, stderr_tail=tail)

    def abandon(self) -> None:
        with self._lock:
            running, self._running = dict(self._running), {}
        for follower, lease in running.values():
            engine_client.remove(follower.container)
            lease.release()
