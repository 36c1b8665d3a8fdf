"""ECS task definitions, one family per worker image, registered by `deploy` only when changed.

Same rules as the Batch job definitions (backends/aws/definitions.py): images name
variants of the deployment's worker image; the content hash lives in a tag. Task size
is overridden per task, so the definition carries a small default.
"""
from __future__ import annotations

from typing import Any

from mlbatch.backends.aws.definitions import (SCRATCH_ENV, SCRATCH_MOUNT, SCRATCH_VOLUME, WORKER_USER, Definition,
                                              hashed, resolve_image, variant)
from mlbatch.backends.ecs.client import LOG_STREAM_PREFIX
from mlbatch.backends.ecs.submission import CONTAINER
from mlbatch.settings import Settings


def family(image: str, settings: Settings) -> str:
    return f"{settings.ecs.definition_prefix}-{variant(image)}"[:255]


def definition(image: str, settings: Settings, tag: str | None = None) -> Definition:
    resolved = resolve_image(image, settings, tag)
    options = {"awslogs-group": settings.ecs.log_group, "awslogs-stream-prefix": LOG_STREAM_PREFIX}
    if settings.aws.region:
        options["awslogs-region"] = settings.aws.region
    body: dict[str, Any] = {
        "family": family(image, settings),
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE", "EC2"],
        "cpu": "1024",
        "memory": "2048",
        "containerDefinitions": [{
            "name": CONTAINER, "image": resolved, "essential": True,
            "memoryReservation": 256,  # a soft floor only: the hard limit is the task's size, set per task
            "command": ["list"],  # after the image's ENTRYPOINT; every task overrides it
            "logConfiguration": {"logDriver": "awslogs", "options": options},
            "user": WORKER_USER,  # privileged stays unset: false, and Fargate accepts no other value
            "readonlyRootFilesystem": True,
            "mountPoints": [dict(SCRATCH_MOUNT)],
            "environment": [dict(e) for e in SCRATCH_ENV],  # a task's overrides add to it
        }],
        "volumes": [{"name": SCRATCH_VOLUME}],  # no host path: the task's own ephemeral storage
    }
    if settings.aws.job_role_arn:
        body["taskRoleArn"] = settings.aws.job_role_arn
    if settings.aws.execution_role_arn:
        body["executionRoleArn"] = settings.aws.execution_role_arn
    return hashed(body["family"], resolved, body)
