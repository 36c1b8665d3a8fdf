"""Batch job definitions, one per worker image, derived from the settings and registered by `deploy`.

A definition holds what does not change per step: the image, the job and execution
roles, where logs go. Resources, command, environment, retries and timeout are set per
submission. Each definition is a family `{prefix}-{variant}`; a new revision is
registered only when the content hash (kept in the `mlbatch:content-hash` tag) differs,
so running `deploy` twice registers once, and steps use the family's latest revision.

Spec images such as `mlbatch-worker:cpu` name a variant of the deployment's worker image
(`{image.repository}:{tag}-{variant}`); a full reference (with a registry or a digest)
is used as written.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from mlbatch.settings import Settings

CONTENT_TAG = "mlbatch:content-hash"


def is_full_reference(image: str) -> bool:
    return "/" in image or "@" in image


def variant(image: str) -> str:
    """'mlbatch-worker:gpu' -> 'gpu'; a full reference -> a short hash of it."""
    if is_full_reference(image):
        return "img-" + hashlib.sha256(image.encode()).hexdigest()[:10]
    return re.sub(r"[^A-Za-z0-9_-]+", "-", image.partition(":")[2] or "cpu")


def resolve_image(image: str, settings: Settings, tag: str | None = None) -> str:
    if is_full_reference(image):
        return image
    return f"{settings.image.repository}:{tag or settings.image.tag}-{variant(image)}"


def definition_name(image: str, settings: Settings) -> str:
    return f"{settings.batch.definition_prefix}-{variant(image)}"[:128]


@dataclass(frozen=True)
class Definition:
    name: str
    image: str
    content_hash: str
    register_args: dict[str, Any]


def definition(image: str, settings: Settings, tag: str | None = None) -> Definition:
    resolved = resolve_image(image, settings, tag)
    container: dict[str, Any] = {
        "image": resolved,
        "command": ["python", "-m", "workers", "list"],  # every submission overrides it
        "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": settings.batch.log_group}},
    }
    if settings.aws.job_role_arn:
        container["jobRoleArn"] = settings.aws.job_role_arn
    if settings.aws.execution_role_arn:
        container["executionRoleArn"] = settings.aws.execution_role_arn
    name = definition_name(image, settings)
    body = {"jobDefinitionName": name, "type": "container", "platformCapabilities": ["EC2"],
            "containerProperties": container, "propagateTags": True}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return Definition(name, resolved, digest, {**body, "tags": {CONTENT_TAG: digest, "mlbatch:image": resolved}})


def plan(images: set[str], settings: Settings, tag: str | None, jobs: Any,
         make: Callable[[str, Settings, str | None], Definition] | None = None) -> list[tuple[Definition, str]]:
    """For each image: its definition (Batch's, or what `make` builds) and 'unchanged' or 'register'."""
    make = make or definition
    result = []
    for image in sorted(images):
        wanted = make(image, settings, tag)
        current = jobs.active_definition(wanted.name)
        same = current is not None and (current.get("tags") or {}).get(CONTENT_TAG) == wanted.content_hash
        result.append((wanted, "unchanged" if same else "register"))
    return result
