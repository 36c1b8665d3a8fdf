"""The docker backend: every shard of a step runs as a container of the worker image on one Docker host.

What the operator sees is what the local backend gives (the same log lines, failure blocks, vcpu
slots, cancel), with what only a container has: the image's own code and packages, hard limits
enforced by the kernel (--cpus, --memory with no swap: a worker over its budget is OOM-killed at
the limit, no watchdog), GPUs through device requests, and labels that let a retry or a restarted
task reattach to a shard's live container instead of starting a duplicate.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from workers import wire
from workers.wire import encode_ranges

from mlbatch.backends.docker import client as engine_client, isolation
from mlbatch.backends.docker.config import HostFacts, local_artifact_dir, passed_environment
from mlbatch.backends.docker.outcome import engine_unreachable
from mlbatch.backends.docker.runner import ContainerRunner
from mlbatch.backends.failures import FailureClass, format_mib
from mlbatch.backends.jobs import JobRequest, JobResult, ShardOutcome
from mlbatch.backends.shard_loop import ShardLoop
from mlbatch.backends.shared_paths import unshared_source_problem
from mlbatch.backends.single_run import SingleRunBackend
from mlbatch.backends.slots import LocalSlots, default_capacity
from mlbatch.backends.traits import backend_info, unseen_disk_problem


class DockerBackend(SingleRunBackend):
    """Runs a JobRequest as containers, one per shard, in parallel as the host's vcpu slots allow."""

    def __init__(self, log: Callable[[str], None] = print, slots: LocalSlots | None = None,
                 settings: Any = None, poll_interval_s: float = 0.2, term_grace_s: float = 5.0) -> None:
        super().__init__(log)
        self._slots = slots
        self._settings = settings  # a mlbatch.settings.DockerSettings; None: read when run() starts
        self.poll_interval_s = poll_interval_s
        self.term_grace_s = term_grace_s
        self._runner: ContainerRunner | None = None

    def _stop_running(self) -> None:
        """Stop and remove every container of this try (the engine kills its processes)."""
        with self._lock:
            runner = self._runner
        if runner is not None:
            runner.remove_all("cancel")

    def _run(self, request: JobRequest) -> JobResult:
        settings = self._settings
        if settings is None:
            from mlbatch.settings import load_settings

            settings = load_settings().docker
        try:
            client = engine_client.connect(settings.host, self._slots.capacity if self._slots else default_capacity())
        except Exception as error:  # the SDK raises DockerException, requests errors, OSError...
            reason = engine_unreachable(engine_client.where(settings.host), error)
            self._emit(f"{request.name}: {reason}")
            return JobResult(name=request.name, shard_count=request.shard_count, memory_mib=request.memory_mib,
                             outcomes=[ShardOutcome(index=i, failure=FailureClass.infrastructure, reason=reason)
                                       for i in request.indices])
        try:
            host = HostFacts(cpus=engine_client.host_cpus(client), network=settings.network, pull=settings.pull,
                             passed_env=passed_environment(settings.pass_env), user=settings.user,
                             pids_limit=settings.pids_limit)
            slots = self._slots if self._slots is not None else engine_client.host_slots(settings.host, host.cpus)
            root = request.env.get(wire.ARTIFACTS, "")
            remote_host = None if engine_client.is_local(settings.host) else engine_client.where(settings.host)
            if problem := (unseen_disk_problem(backend_info("docker"), root, remote_host=remote_host)
                           or unshared_source_problem(request)):
                from mlbatch.settings import SettingsError

                raise SettingsError(problem)
            if local_artifact_dir(root) is None and isolation.network_mode(request, host.network) == "none":
                self._emit(f"{request.name}: its containers have no network to reach the artifact root {root}: "
                           f"write network: host in the step, or set [docker] network = \"host\"")
            return self._run_on(client, host, slots, request, local_artifact_dir(root))
        finally:
            with self._lock:
                self._runner = None
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
        runner = ContainerRunner(client, host, request, self._emit, self._wake, self._lock)
        with self._lock:
            self._runner = runner
        # Interrupted, the loop abandons every shard: no container or held slot is left behind.
        return ShardLoop(request, runner, slots, self._emit, self._cancelled, self._wake,
                         self.term_grace_s).run(self.poll_interval_s)
