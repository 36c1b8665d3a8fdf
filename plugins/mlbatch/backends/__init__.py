"""Backends: where a step's workers run. Each takes the same `mlbatch.backends.jobs.JobRequest`.

- local: every shard as its own capped OS process on this machine (the embedded default).
- docker: every shard as a container of the worker image on one Docker host: mlbatch.backends.docker.
- batch: AWS Batch jobs / array jobs (GPU queues, spot): mlbatch.backends.aws_batch.
- ecs: Amazon ECS tasks (Fargate, Fargate Spot, EC2 GPU): mlbatch.backends.ecs.

Backend modules are imported when asked for, never at DAG parse time.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlbatch.backends.protocols import Backend

KNOWN_BACKENDS = ("local", "docker", "batch", "ecs")


class UnknownBackendError(ValueError):
    """The name is not a backend."""


def get_backend(name: str, **options: Any) -> Backend:
    """A backend instance by its spec name ('local', 'docker', 'batch', 'ecs'); options go to its constructor."""
    key = name.strip().lower()
    if key == "local":
        from mlbatch.backends.local import LocalBackend

        return LocalBackend(**options)
    if key == "docker":
        from mlbatch.backends.docker import DockerBackend

        return DockerBackend(**options)
    if key == "batch":
        from mlbatch.backends.aws_batch.backend import AwsBatchBackend

        return AwsBatchBackend(**options)
    if key == "ecs":
        from mlbatch.backends.ecs.backend import EcsBackend

        return EcsBackend(**options)
    raise UnknownBackendError(f"unknown backend {name!r}; expected one of: {', '.join(KNOWN_BACKENDS)}")
