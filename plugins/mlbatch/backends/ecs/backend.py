"""EcsBackend: each shard of a step try as one ECS task, on Fargate, Fargate Spot or an EC2 GPU provider.

submit() starts a task per missing shard, or reattaches to the live task of that shard
(found by its deterministic startedBy: an Airflow retry after a lost worker, a restarted
task, another run with the same inputs); wait() polls in the task; trigger() hands the
wait to the triggerer. ECS has no timeout of its own: past the step's timeout the tasks
are stopped and the step fails as `timeout`.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict

from mlbatch.backends.aws_batch.outcome import CANCEL_REASON, summary_line
from mlbatch.backends.ecs.client import EcsTasks
from mlbatch.backends.ecs.definitions import family
from mlbatch.backends.ecs.outcome import classify_task, progress
from mlbatch.backends.ecs.submission import capacity_of, run_task_args, started_by
from mlbatch.backends.remote_logs import LOG_TAIL_LINES, FinishedShard, report_shards
from mlbatch.backends.failures import FailureClass, format_duration, format_mib
from mlbatch.backends.jobs import JobRequest, JobResult, ShardOutcome
from mlbatch.settings import Settings, SettingsError, load_settings



class EcsHandle(BaseModel):
    model_config = ConfigDict(frozen=True)

    cluster: str
    name: str  # dag_id.step
    tasks: dict[int, str | None]  # shard -> task ARN (None: RunTask placed nothing)
    shard_count: int
    memory_mib: int
    vcpu: float
    gpu: int
    spot: bool
    capacity_provider: str
    timeout_s: float | None = None
    start_timeout_s: float | None = None
    submitted_at: float
    placement_failures: dict[int, str] = {}  # shard -> why RunTask placed no task

    @property
    def deadline(self) -> float | None:
        return self.submitted_at + self.timeout_s if self.timeout_s else None

    @property
    def start_deadline(self) -> float | None:
        return self.submitted_at + self.start_timeout_s if self.start_timeout_s else None

    @property
    def arns(self) -> list[str]:
        return [arn for arn in self.tasks.values() if arn]


class EcsBackend:
    handle_type = EcsHandle

    def __init__(self, log: Callable[[str], None] = print, settings: Settings | None = None,
                 tasks: EcsTasks | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self._log = log
        self.settings = settings or load_settings()
        self.tasks = tasks or EcsTasks(self.settings.aws.conn_id, self.settings.aws.region)
        self._sleep, self._clock = sleep, clock
        self._handle: EcsHandle | None = None

    @property
    def deferrable_default(self) -> bool:
        return self.settings.ecs.deferrable

    # -- the backend interface the operator uses ----------------------------------
    def run(self, request: JobRequest) -> JobResult:
        return self.wait(self.submit(request))

    def submit(self, request: JobRequest) -> EcsHandle:
        ecs = self.settings.ecs
        capacity = capacity_of(request, request.capacity)
        provider = ecs.capacity_provider(capacity)
        definition = family(request.image, self.settings)
        if self.tasks.active_definition(definition) is None:
            raise SettingsError(f"ECS task definition {definition!r} (image {request.image!r}) is not registered: "
                                "run `python -m mlbatch deploy --image-tag <tag>` once per worker image")
        tasks: dict[int, str | None] = {}
        failures: dict[int, str] = {}
        reattached = started = 0
        for shard in request.indices:
            live = self.tasks.find_live(ecs.cluster, started_by(request, shard)) if request.identity else None
            if live is not None:
                tasks[shard] = live["taskArn"]
                reattached += 1
                continue
            task = self.tasks.run(run_task_args(
                request, shard, cluster=ecs.cluster, task_definition=definition, capacity_provider=provider,
                subnets=ecs.subnets, security_groups=ecs.security_groups, assign_public_ip=ecs.assign_public_ip))
            tasks[shard] = task.get("taskArn")
            if not task.get("taskArn"):
                failures[shard] = task.get("stoppedReason", "RunTask placed no task")
            started += 1
        handle = EcsHandle(cluster=ecs.cluster, name=request.name, tasks=tasks, shard_count=request.shard_count,
                           memory_mib=request.memory_mib, vcpu=request.vcpu, gpu=request.gpu,
                           spot=capacity == "spot", capacity_provider=provider, timeout_s=request.timeout_s,
                           start_timeout_s=request.start_timeout_s, submitted_at=self._clock(),
                           placement_failures=failures)
        if reattached:
            self._log(f"{request.name}: reattached to {reattached} live ECS task(s) instead of starting them again")
        if started:
            self._log(f"{request.name}: started {started} ECS task(s) on {provider} in cluster {ecs.cluster}: "
                      f"{request.vcpu:g} vcpu, {format_mib(request.memory_mib)}"
                      + (f", {request.gpu} GPU" if request.gpu else "")
                      + (f", timeout {format_duration(request.timeout_s)} (enforced by mlbatch)" if request.timeout_s else ""))
        self._handle = handle
        return handle

    def wait(self, handle: EcsHandle) -> JobResult:
        self._handle = handle
        last = ""
        while True:
            described = self.tasks.describe(handle.cluster, handle.arns)
            state = progress(described, now=self._clock(), start_deadline=handle.start_deadline,
                             deadline=handle.deadline)
            said = _status_text(described)
            if said != last:
                self._log(f"{handle.name}: tasks {said}")
                last = said
            if state != "waiting":
                return self.finish(handle, state)
            self._sleep(self.settings.ecs.poll_interval.total_seconds())

    def trigger(self, handle: EcsHandle, resume: dict[str, Any] | None = None) -> Any:
        from mlbatch.backends.ecs.trigger import EcsStepTrigger

        return EcsStepTrigger(cluster=handle.cluster, task_arns=handle.arns, aws_conn_id=self.settings.aws.conn_id,
                              region_name=self.settings.aws.region,
                              poll_interval_s=self.settings.ecs.poll_interval.total_seconds(),
                              start_deadline=handle.start_deadline, deadline=handle.deadline, resume=resume)

    def finish(self, handle: EcsHandle, state: str | None) -> JobResult:
        """The tasks' result; past a deadline (or never placed) they are stopped first."""
        if state == "timed_out":
            self._stop_all(handle, f"{CANCEL_REASON}: past its {format_duration(handle.timeout_s or 0)} timeout")
            self._await_stopped(handle)
        elif state == "not_started":
            self._stop_all(handle, f"{CANCEL_REASON}: no capacity: not running after its "
                                   f"{format_duration(handle.start_timeout_s or 0)} start_timeout on "
                                   f"{handle.capacity_provider}")
            self._await_stopped(handle)
        return self.collect(handle)

    def cancel(self) -> None:
        if self._handle is not None:
            self._stop_all(self._handle, f"{CANCEL_REASON} (the Airflow task was stopped)")

    # -- collecting ------------------------------------------------------------------
    def collect(self, handle: EcsHandle) -> JobResult:
        described = {task["taskArn"]: task for task in self.tasks.describe(handle.cluster, handle.arns)}
        pairs = [(shard, arn, described.get(arn) if arn else None) for shard, arn in sorted(handle.tasks.items())]
        verdicts = {shard: _verdict(task) for shard, _, task in pairs}
        if len(pairs) > 1:
            self._log(summary_line(handle.name, verdicts, "tasks"))
        shards = [FinishedShard(shard, arn, task, verdicts[shard] != "SUCCEEDED") for shard, arn, task in pairs]
        outcomes = report_shards(shards, name=handle.name, shard_count=handle.shard_count, nouns=("task", "tasks"),
                                 fetch_lines=lambda arn: self.tasks.log_lines(self.settings.ecs.log_group, arn),
                                 to_outcome=lambda shard, lines: self._outcome(handle, shard.index,
                                                                               shard.described, lines),
                                 log=self._log)
        return JobResult(name=handle.name, shard_count=handle.shard_count, memory_mib=handle.memory_mib,
                         outcomes=outcomes)

    def _outcome(self, handle: EcsHandle, shard: int, task: dict[str, Any] | None, lines: list[str]) -> ShardOutcome:
        if task is None:
            reason = handle.placement_failures.get(shard, "the task is gone (ECS keeps stopped tasks about an hour)")
            return ShardOutcome(index=shard, failure=FailureClass.infrastructure, reason=reason)
        tail = lines[-LOG_TAIL_LINES:]
        failure, reason, exit_code = classify_task(task, memory_mib=handle.memory_mib, log_tail=tail)
        return ShardOutcome(index=shard, exit_code=exit_code, duration_s=round(_duration_s(task), 3),
                            failure=failure, reason=reason, stderr_tail=tail if failure else [])

    def _stop_all(self, handle: EcsHandle, reason: str) -> None:
        for arn in handle.arns:
            self.tasks.stop(handle.cluster, arn, reason)
        self._log(f"{handle.name}: stopped {len(handle.arns)} ECS task(s): {reason}")

    def _await_stopped(self, handle: EcsHandle, within_s: float = 120.0) -> None:
        until = self._clock() + within_s
        while self._clock() < until:
            if all(t.get("lastStatus") == "STOPPED" for t in self.tasks.describe(handle.cluster, handle.arns)):
                return
            self._sleep(min(5.0, self.settings.ecs.poll_interval.total_seconds()))


def _verdict(task: dict[str, Any] | None) -> str:
    if task is None:
        return "FAILED"
    if task.get("lastStatus") != "STOPPED":
        return task.get("lastStatus", "UNKNOWN")
    return "SUCCEEDED" if classify_task(task, memory_mib=0)[0] is None else "FAILED"


def _duration_s(task: dict[str, Any]) -> float:
    started, stopped = task.get("startedAt"), task.get("stoppedAt")
    try:
        return max(0.0, (stopped - started).total_seconds())
    except (TypeError, AttributeError):
        return 0.0


def _status_text(tasks: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for task in tasks:
        counts[task.get("lastStatus", "?")] = counts.get(task.get("lastStatus", "?"), 0) + 1
    return ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items())) or "none"
