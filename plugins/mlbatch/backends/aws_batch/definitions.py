"""AWS Batch job definitions, one per worker image, derived from the settings and registered by `deploy`.

Resources, command, environment, retries and timeout are set per submission; the naming,
hashing and planning rules are backends/aws/definitions.py's, shared with ECS.
"""
from __future__ import annotations

from typing import Any, Callable

from mlbatch.backends.aws.definitions import (SCRATCH_ENV, SCRATCH_MOUNT, SCRATCH_VOLUME, WORKER_USER, Definition,
                                              hashed, resolve_image, variant)
from mlbatch.backends.aws.definitions import plan as plan_for
from mlbatch.settings import Settings


def definition_name(image: str, settings: Settings) -> str:
    return f"{settings.batch.definition_prefix}-{variant(image)}"[:128]


def definition(image: str, settings: Settings, tag: str | None = None) -> Definition:
    resolved = resolve_image(image, settings, tag)
    container: dict[str, Any] = {
        "image": resolved,
        "command": ["list"],  # after the image's ENTRYPOINT; every submission overrides it
        "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": settings.batch.log_group}},
        "user": WORKER_USER,
        "privileged": False,
        "readonlyRootFilesystem": True,
        "volumes": [{"name": SCRATCH_VOLUME}],  # no host path: a volume of the instance's disk for this job
        "mountPoints": [dict(SCRATCH_MOUNT)],
        "environment": [dict(e) for e in SCRATCH_ENV],  # a submission's environment adds to it
    }
    if settings.aws.job_role_arn:
        container["jobRoleArn"] = settings.aws.job_role_arn
    if settings.aws.execution_role_arn:
        container["executionRoleArn"] = settings.aws.execution_role_arn
    name = definition_name(image, settings)
    body = {"jobDefinitionName": name, "type": "container", "platformCapabilities": ["EC2"],
            "containerProperties": container, "propagateTags": True}
    return hashed(name, resolved, body)


def plan(images: set[str], settings: Settings, tag: str | None, jobs: Any,
         make: Callable[[str, Settings, str | None], Definition] | None = None) -> list[tuple[Definition, str]]:
    """For each image: its definition (Batch's, or what `make` builds) and 'unchanged' or 'register'."""
    return plan_for(images, settings, tag, jobs, make or definition)
