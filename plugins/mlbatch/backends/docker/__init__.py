"""backend: docker: every shard as a container of the worker image on one Docker host (docs/docker-backend.md)."""
from __future__ import annotations

from mlbatch.backends.docker.backend import DockerBackend

__all__ = ["DockerBackend"]
