"""ECS task definitions, one family per worker image, registered by `deploy` only when changed.

Same rules as the Batch job definitions (backends/aws/definitions.py): images name
variants of the deployment's worker image; the content hash lives in a tag. Task size
is overridden per task, so the definition carries a small default.
"""
from __future__ import annotations

from typing import Any

from mlbatch.backends.aws.definitions import Definition, hashed, resolve_image, variant
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
        }],
    }
    if settings.aws.job_role_arn:
        body["taskRoleArn"] = settings.aws.job_role_arn
    if settings.aws.execution_role_arn:
        body["executionRoleArn"] = settings.aws.execution_role_arn
    return hashed(body["family"], resolved, body)
