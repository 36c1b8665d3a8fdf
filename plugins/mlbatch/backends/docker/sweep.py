"""The docker backend's part of the sweeper: its step containers on one engine, found by their labels.

Every step container carries mlbatch.identity and the request's tags as mlbatch.<tag> labels
(config.container_labels); a container without dag, step and run labels is left alone.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from mlbatch.backends.docker import client as engine_client
from mlbatch.backends.docker.config import IDENTITY_LABEL, LABEL_PREFIX
from mlbatch.sweep.resources import StepResource, step_tags


def created_at(text: str) -> float:
    """Docker's RFC 3339 time with nanoseconds ('2026-12-02T13:45:01.123456789Z') as epoch seconds."""
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(trimmed).timestamp()


def resource_of(attrs: dict[str, Any]) -> StepResource | None:
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    tags = step_tags(labels, LABEL_PREFIX)
    if tags is None:
        return None
    dag, step, run = tags
    state = attrs.get("State") or {}
    return StepResource(kind="container", id=str(attrs["Id"])[:12], dag=dag, step=step, run=run,
                        created=created_at(str(attrs.get("Created", ""))), status=str(state.get("Status", "")))


class DockerSweepSource:
    """The step containers of the Docker engine [docker] host names (any state: exited ones are clutter too)."""

    name = "docker"

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def connect(cls, host: str | None) -> DockerSweepSource:
        return cls(engine_client.connect(host, parallel=1))

    def list(self) -> list[StepResource]:
        containers = self.client.containers.list(all=True, filters={"label": [IDENTITY_LABEL]})
        return [found for container in containers if (found := resource_of(container.attrs)) is not None]

    def stop(self, resource: StepResource, reason: str) -> None:
        """Remove the container (killed first if it runs); gone already is fine."""
        from docker.errors import NotFound

        try:
            self.client.containers.get(resource.id).remove(force=True)
        except NotFound:
            pass
