"""The ECS part of the sweeper: the cluster's running tasks, with their mlbatch tags.

ListTasks (desired status RUNNING) and DescribeTasks with tags; StopTask with mlbatch's cancel
reason. A task without dag, step and run tags is not a step's and is left alone.
"""
from __future__ import annotations

from typing import Any

from mlbatch.backends.aws.conventions import CANCEL_REASON, TAG_PREFIX
from mlbatch.backends.ecs.client import EcsTasks
from mlbatch.backends.ecs.outcome import LIVE
from mlbatch.sweep.resources import StepResource, step_tags


def resource_of(task: dict[str, Any], cluster: str) -> StepResource | None:
    tags = step_tags({tag["key"]: tag["value"] for tag in task.get("tags") or []}, TAG_PREFIX)
    if tags is None:
        return None
    dag, step, run = tags
    created = task.get("createdAt")
    return StepResource(kind="ECS task", id=task["taskArn"], dag=dag, step=step, run=run,
                        created=created.timestamp() if hasattr(created, "timestamp") else float(created or 0),
                        status=str(task.get("lastStatus", "")), where=cluster)


class EcsSweepSource:
    name = "ECS"

    def __init__(self, tasks: EcsTasks, cluster: str) -> None:
        self.tasks, self.cluster = tasks, cluster

    def list(self) -> list[StepResource]:
        arns: list[str] = []
        for page in self.tasks.client.get_paginator("list_tasks").paginate(cluster=self.cluster,
                                                                            desiredStatus="RUNNING"):
            arns += page.get("taskArns", [])
        return [r for task in self.tasks.describe(self.cluster, arns)
                if task.get("lastStatus") in LIVE and (r := resource_of(task, self.cluster)) is not None]

    def stop(self, resource: StepResource, reason: str) -> None:
        self.tasks.stop(self.cluster, resource.id, f"{CANCEL_REASON} ({reason})")
