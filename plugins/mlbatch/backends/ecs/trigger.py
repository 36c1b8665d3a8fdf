"""EcsStepTrigger: waits in the triggerer for a step's ECS tasks (the loop is aws.trigger.PollingTrigger's).

A step is many tasks (one per shard). ECS has no timeout of its own, so this trigger
reports `timed_out` past the step's deadline for the task to stop them, and
`not_started` for tasks still provisioning past the start deadline (capacity starvation).
"""
from __future__ import annotations

import time
from typing import Any, AsyncIterator, Hashable

from airflow.triggers.base import TriggerEvent

from mlbatch.backends.aws.conventions import STOPPED_BY_AIRFLOW
from mlbatch.backends.aws.trigger import PollingTrigger
from mlbatch.backends.ecs.outcome import progress
from mlbatch.backends.protocols import Progress


class EcsStepTrigger(PollingTrigger):
    def __init__(self, cluster: str, task_arns: list[str], aws_conn_id: str | None, region_name: str | None = None,
                 poll_interval_s: float = 15.0, start_deadline: float | None = None, deadline: float | None = None,
                 resume: dict[str, Any] | None = None) -> None:
        super().__init__(aws_conn_id, region_name, poll_interval_s, resume)
        self.cluster, self.task_arns = cluster, list(task_arns)
        self.start_deadline, self.deadline = start_deadline, deadline

    def own_kwargs(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "task_arns": self.task_arns, "start_deadline": self.start_deadline,
                "deadline": self.deadline}

    def hook(self) -> Any:
        from airflow.providers.amazon.aws.hooks.ecs import EcsHook

        return EcsHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        if not self.task_arns:  # RunTask placed nothing: there is nothing to wait for
            yield TriggerEvent({"state": Progress.done.value, "resume": self.resume})
            return
        async for event in super().run():
            yield event

    def watched(self) -> list[str]:
        return self.task_arns

    async def describe(self, client: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
        response = await client.describe_tasks(cluster=self.cluster, tasks=ids)
        return {task["taskArn"]: task for task in response.get("tasks", [])}

    def poll_group(self) -> Hashable:
        return (*super().poll_group(), self.cluster)  # DescribeTasks is per cluster

    def judge(self, described: dict[str, dict[str, Any] | None]) -> tuple[Progress, dict[str, Any]]:
        tasks = [task for task in described.values() if task is not None]
        state = progress(tasks, now=time.time(), start_deadline=self.start_deadline, deadline=self.deadline)
        return state, {}

    async def stop(self, client: Any) -> None:
        for arn in self.task_arns:
            await client.stop_task(cluster=self.cluster, task=arn, reason=STOPPED_BY_AIRFLOW)
