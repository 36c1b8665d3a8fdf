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

from mlbatch.backends.aws.conventions import CANCEL_REASON, summary_line
from mlbatch.backends.aws.logs import FinishedShard
from mlbatch.backends.aws.polling import PollingBackend, RemoteHandle
from mlbatch.backends.ecs.client import EcsTasks
from mlbatch.backends.ecs.definitions import family
from mlbatch.backends.ecs.outcome import classify_task, progress
from mlbatch.backends.ecs.submission import capacity_of, run_task_args, started_by
from mlbatch.backends.failures import FailureClass, format_duration
from mlbatch.backends.jobs import JobRequest, JobResult
from mlbatch.backends.protocols import LogLine, Progress
from mlbatch.settings import EcsSettings, Settings


class EcsHandle(RemoteHandle):
    cluster: str
    tasks: dict[int, str | None]  # shard -> task ARN (None: RunTask placed nothing)
    capacity_provider: str
    placement_failures: dict[int, str] = {}  # shard -> why RunTask placed no task

    def placement(self) -> dict[str, str]:
        return {"capacity_provider": self.capacity_provider}

    @property
    def deadline(self) -> float | None:
        return self.submitted_at + self.timeout_s if self.timeout_s else None

    @property
    def arns(self) -> list[str]:
        return [arn for arn in self.tasks.values() if arn]

    @property
    def shards(self) -> list[int]:
        return sorted(self.tasks)


class EcsBackend(PollingBackend[EcsHandle]):
    handle_type = EcsHandle
    service = "ECS"
    definition_noun = "task definition"

    def __init__(self, log: LogLine = print, settings: Settings | None = None, tasks: EcsTasks | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time) -> None:
        super().__init__(log, settings, sleep, clock)
        self.tasks = tasks or EcsTasks(self.settings.aws.conn_id, self.settings.aws.region)

    @property
    def section(self) -> EcsSettings:
        return self.settings.ecs

    def submit(self, request: JobRequest) -> EcsHandle:
        ecs = self.settings.ecs
        capacity = capacity_of(request, request.capacity)
        provider = ecs.capacity_provider(capacity)
        definition = family(request.image, self.settings)
        tasks: dict[int, str | None] = {}
        failures: dict[int, str] = {}
        reattached = started = 0
        for shard in request.indices:
            live = self.tasks.find_live(ecs.cluster, started_by(request, shard)) if request.identity else None
            if live is not None:
                tasks[shard] = live["taskArn"]
                reattached += 1
                continue
            args = run_task_args(request, shard, cluster=ecs.cluster, task_definition=definition,
                                 capacity_provider=provider, subnets=ecs.subnets, security_groups=ecs.security_groups,
                                 assign_public_ip=ecs.assign_public_ip)
            task = self.submit_checked(lambda: self.tasks.run(args), definition, request.image,
                                       self.tasks.active_definition)
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
            self.log_submission(request, f"started {started} ECS task(s) on {provider} in cluster {ecs.cluster}",
                                timeout_note=" (enforced by mlbatch)")
        self._handle = handle
        return handle

    def look(self, handle: EcsHandle) -> tuple[Progress, str]:
        described = self.tasks.describe(handle.cluster, handle.arns)
        state = progress(described, now=self._clock(), start_deadline=handle.start_deadline, deadline=handle.deadline)
        return state, f"tasks {_status_text(described)}"

    def trigger(self, handle: EcsHandle, resume: dict[str, Any] | None = None) -> Any:
        from mlbatch.backends.ecs.trigger import EcsStepTrigger

        return EcsStepTrigger(cluster=handle.cluster, task_arns=handle.arns, aws_conn_id=self.settings.aws.conn_id,
                              region_name=self.settings.aws.region, poll_interval_s=self.poll_interval_s,
                              start_deadline=handle.start_deadline, deadline=handle.deadline, resume=resume)

    def timed_out(self, handle: EcsHandle) -> JobResult:
        """ECS has no timeout of its own: stop the tasks, then collect them (classified as timeout)."""
        self.stop(handle, f"{CANCEL_REASON}: past its {format_duration(handle.timeout_s or 0)} timeout")
        self._await_stopped(handle)
        return self.collect(handle)

    def starved(self, handle: EcsHandle) -> JobResult:
        self.stop(handle, f"{CANCEL_REASON}: no capacity: not running after its "
                          f"{format_duration(handle.start_timeout_s or 0)} start_timeout on {handle.capacity_provider}")
        self._await_stopped(handle)
        return self.collect(handle)

    def stop(self, handle: EcsHandle, reason: str) -> None:
        for arn in handle.arns:
            self.tasks.stop(handle.cluster, arn, reason)
        self._log(f"{handle.name}: stopped {len(handle.arns)} ECS task(s): {reason}")

    # -- collecting ------------------------------------------------------------------
    def collect(self, handle: EcsHandle) -> JobResult:
        described = {task["taskArn"]: task for task in self.tasks.describe(handle.cluster, handle.arns)}
        pairs = [(shard, arn, described.get(arn) if arn else None) for shard, arn in sorted(handle.tasks.items())]
        verdicts = {shard: _verdict(task) for shard, _, task in pairs}
        if len(pairs) > 1:
            self._log(summary_line(handle.name, verdicts, "tasks"))
        shards = [FinishedShard(shard, arn, task, verdicts[shard] != "SUCCEEDED") for shard, arn, task in pairs]
        return self.report(handle, shards, lambda arn: self.tasks.log_lines(self.settings.ecs.log_group, arn),
                           ("task", "tasks"))

    def classify(self, handle: EcsHandle, described: dict[str, Any], log_tail: list[str]
                 ) -> tuple[FailureClass | None, str, int | None, float]:
        failure, reason, exit_code = classify_task(described, memory_mib=handle.memory_mib, log_tail=log_tail)
        return failure, reason, exit_code, _duration_s(described)

    def gone_reason(self, handle: EcsHandle, shard: int) -> str:
        return handle.placement_failures.get(shard, "the task is gone (ECS keeps stopped tasks about an hour)")

    def _await_stopped(self, handle: EcsHandle, within_s: float = 120.0) -> None:
        until = self._clock() + within_s
        while self._clock() < until:
            if all(t.get("lastStatus") == "STOPPED" for t in self.tasks.describe(handle.cluster, handle.arns)):
                return
            self._sleep(min(5.0, self.poll_interval_s))


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
