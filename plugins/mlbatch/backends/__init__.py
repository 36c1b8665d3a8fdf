"""Backends: where a step's workers run. Each takes the same `mlbatch.backends.jobs.JobRequest`.

- local: every shard as its own capped OS process on this machine (the embedded default).
- docker: every shard as a container of the worker image on one Docker host: mlbatch.backends.docker.
- batch: AWS Batch jobs / array jobs (GPU queues, spot): mlbatch.backends.aws_batch.
- ecs: Amazon ECS tasks (Fargate, Fargate Spot, EC2 GPU): mlbatch.backends.ecs.

What each one is (runs here or in containers, needs an object store, bills GPUs, its pool, its
spec checks) is data in mlbatch.backends.traits. Backend modules are imported when asked for,
never at DAG parse time.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlbatch.backends.traits import (
    BACKEND_INFO, KNOWN_BACKENDS, BackendInfo, UnknownBackendError, backend_info, load_backend_class,
)

if TYPE_CHECKING:
    from mlbatch.backends.protocols import Backend

__all__ = ["BACKEND_INFO", "KNOWN_BACKENDS", "BackendInfo", "UnknownBackendError", "backend_info", "get_backend"]


def get_backend(name: str, **options: Any) -> Backend:
    """A backend instance by its spec name ('local', 'docker', 'batch', 'ecs'); options go to its constructor."""
    return load_backend_class(backend_info(name))(**options)
