"""EcsStepTrigger: waits in the triggerer for a step's ECS tasks, and reports when they have stopped.

Our own rather than the provider's EcsTaskStateTrigger: a step is many tasks (one per
shard), ECS has no timeout of its own (this trigger reports the step's deadline so the
task can stop them), and a task stuck provisioning past start_timeout is capacity
starvation. It only watches; the task resumes to stop, classify, collect and commit.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseTrigger, TriggerEvent

from mlbatch.backends.ecs.outcome import progress

_THROTTLED = ("ThrottlingException", "TooManyRequestsException")


class EcsStepTrigger(BaseTrigger):
    def __init__(self, cluster: str, task_arns: list[str], aws_conn_id: str | None, region_name: str | None = None,
                 poll_interval_s: float = 15.0, start_deadline: float | None = None, deadline: float | None = None,
                 resume: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.cluster, self.task_arns = cluster, list(task_arns)
        self.aws_conn_id, self.region_name = aws_conn_id, region_name
        self.poll_interval_s = poll_interval_s
        self.start_deadline, self.deadline = start_deadline, deadline
        self.resume = resume or {}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "cluster": self.cluster, "task_arns": self.task_arns, "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name, "poll_interval_s": self.poll_interval_s,
            "start_deadline": self.start_deadline, "deadline": self.deadline, "resume": self.resume})

    def _hook(self) -> Any:
        from airflow.providers.amazon.aws.hooks.ecs import EcsHook

        return EcsHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from botocore.exceptions import ClientError

        if not self.task_arns:
            yield TriggerEvent({"state": "done", "resume": self.resume})
            return
        throttled = 0
        async with await self._hook().get_async_conn() as client:
            # First look after one interval: a step defers right after it submits, and an event that
            # fires within a second or two of the deferral can lose a race in Airflow's scheduler that
            # fails the task (apache/airflow#66374, #72716, open in 3.3.2).
            await asyncio.sleep(self.poll_interval_s)
            while True:
                tasks: list[dict[str, Any]] = []
                try:
                    for start in range(0, len(self.task_arns), 100):
                        response = await client.describe_tasks(cluster=self.cluster,
                                                               tasks=self.task_arns[start:start + 100])
                        tasks += response.get("tasks", [])
                    throttled = 0
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in _THROTTLED:
                        raise
                    throttled += 1
                    await asyncio.sleep(min(30.0, 0.5 * 2 ** throttled))
                    continue
                state = progress(tasks, now=time.time(), start_deadline=self.start_deadline, deadline=self.deadline)
                if state != "waiting":
                    yield TriggerEvent({"state": state, "resume": self.resume})
                    return
                await asyncio.sleep(self.poll_interval_s)

    async def on_kill(self) -> None:
        """Mark failed / clear on a deferred step: stop its tasks too."""
        from mlbatch.backends.aws_batch.outcome import CANCEL_REASON

        async with await self._hook().get_async_conn() as client:
            for arn in self.task_arns:
                await client.stop_task(cluster=self.cluster, task=arn, reason=f"{CANCEL_REASON} (the Airflow task was stopped)")
