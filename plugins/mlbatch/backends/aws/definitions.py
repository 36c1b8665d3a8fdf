"""Job and task definitions: one per worker image, registered by `deploy` only when their content changed.

A definition holds what does not change per step: the image, the roles, where logs go.
Each is named `{prefix}-{variant}`; a new revision is registered only when the content
hash (kept in the `mlbatch:content-hash` tag) differs, so running `deploy` twice
registers once, and steps use the latest revision.

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
IMAGE_TAG = "mlbatch:image"
# A step runs its worker's code: as the image's own user, never root, on a read-only root filesystem
# with one writable scratch volume (the task's own disk) at /tmp, which is also HOME for library caches.
WORKER_USER = "10001"
SCRATCH_VOLUME = "scratch"
SCRATCH_PATH = "/tmp"
SCRATCH_MOUNT = {"sourceVolume": SCRATCH_VOLUME, "containerPath": SCRATCH_PATH, "readOnly": False}
SCRATCH_ENV = [{"name": "HOME", "value": SCRATCH_PATH}]


@dataclass(frozen=True)
class Definition:
    name: str
    image: str
    content_hash: str
    register_args: dict[str, Any]


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


def hashed(name: str, image: str, body: dict[str, Any]) -> Definition:
    """The definition of `body`, tagged with its content hash (what `plan` compares) and its image."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return Definition(name, image, digest, {**body, "tags": {CONTENT_TAG: digest, IMAGE_TAG: image}})


def plan(images: set[str], settings: Settings, tag: str | None, jobs: Any,
         make: Callable[[str, Settings, str | None], Definition]) -> list[tuple[Definition, str]]:
    """For each image: its definition (what `make` builds) and 'unchanged' or 'register'."""
    result = []
    for image in sorted(images):
        wanted = make(image, settings, tag)
        current = jobs.active_definition(wanted.name)
        same = current is not None and (current.get("tags") or {}).get(CONTENT_TAG) == wanted.content_hash
        result.append((wanted, "unchanged" if same else "register"))
    return result
