"""A JobRequest as ECS RunTask calls: one task per shard. Pure: no AWS calls here.

ECS has no array index: the only per-task input is the container overrides of the RunTask
call that starts it, so a shard must be its own call (count=1) to learn its shard index.
Each task's startedBy names its step output and shard, which is how a retry finds it again.
"""
from __future__ import annotations

import math
from typing import Any

from workers import wire

from mlbatch.backends.aws.conventions import job_tags
from mlbatch.backends.ecs import fargate
from mlbatch.backends.environment import shard_command, shard_environment
from mlbatch.backends.jobs import JobRequest

CONTAINER = "worker"  # the one container of every mlbatch task definition
MAX_STARTED_BY = 36  # ECS limit: letters, digits, '-', '_' and '/'


def started_by(request: JobRequest, shard: int) -> str:
    """Deterministic per cache key and shard: 'mlb-0123456789abcdef-17'."""
    return f"mlb-{request.identity[:16] or 'nokey'}-{shard}"[:MAX_STARTED_BY]


def capacity_of(request: JobRequest, capacity: str) -> str:
    """GPU steps run on the EC2 GPU capacity provider; the others on Fargate or Fargate Spot."""
    return "gpu" if request.gpu else capacity


def task_size(request: JobRequest) -> tuple[str, str]:
    """Task-level (cpu units, memory MiB): a Fargate size for CPU steps (lint asks for a valid one)."""
    if request.gpu:
        return str(max(1, math.ceil(request.vcpu)) * 1024), str(request.memory_mib)
    vcpu, memory = fargate.nearest(request.vcpu, request.memory_mib)
    return fargate.cpu_units(vcpu), str(memory)


def run_task_args(request: JobRequest, shard: int, *, cluster: str, task_definition: str, capacity_provider: str,
                  subnets: list[str], security_groups: list[str], assign_public_ip: bool) -> dict[str, Any]:
    env = shard_environment(request, wire.shard_env(request.shard_count, shard))
    container: dict[str, Any] = {
        "name": CONTAINER,
        "command": shard_command(request, shard),
        "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
    }
    if request.gpu:
        container["resourceRequirements"] = [{"type": "GPU", "value": str(request.gpu)}]
    cpu, memory = task_size(request)
    tags = {**job_tags(request), "mlbatch:shard": str(shard)}
    return {
        "cluster": cluster,
        "taskDefinition": task_definition,
        "count": 1,
        "startedBy": started_by(request, shard),
        "capacityProviderStrategy": [{"capacityProvider": capacity_provider, "weight": 1}],
        "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": list(subnets), "securityGroups": list(security_groups),
            "assignPublicIp": "ENABLED" if assign_public_ip else "DISABLED"}},
        "overrides": {"containerOverrides": [container], "cpu": cpu, "memory": memory},
        "tags": [{"key": k, "value": v} for k, v in sorted(tags.items())],
        "enableECSManagedTags": True,
        "propagateTags": "TASK_DEFINITION",
    }
