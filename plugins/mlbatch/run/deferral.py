"""What a step keeps while its remote job is waited on in the triggerer, and what it needs to go remote.

Everything in RemoteState travels through Airflow's database as the deferral's kwargs,
so it is plain JSON: ids, URIs, numbers. No secret is ever in it.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class RemoteState(BaseModel):
    model_config = ConfigDict(frozen=True)

    handle: dict[str, Any]  # the backend's own handle (e.g. BatchHandle), as JSON
    output: str
    shard_count: int
    key: str
    ingredients: dict[str, Any]
    todo: list[int]
    started: float  # epoch seconds when the step began
    memory_mib: int


def remote_artifact_problem(root: str, backend: str) -> str | None:
    """A container cannot read this machine's disk: remote steps need an object-store artifact root."""
    if "://" in root and not root.startswith("file://"):
        return None
    return (f"backend {backend!r} runs workers in containers that cannot see this machine's disk, "
            f"but the artifact root is {root!r}: set MLBATCH_ARTIFACTS (or [artifacts] root in mlbatch.toml) "
            "to an s3:// URI the job role can write")
