"""The wire contract between the orchestrator (plugins/) and a worker: how a shard is started.

A worker image's ENTRYPOINT is `WORKER_ENTRYPOINT` (Dockerfile.worker says the same, and a
test holds them equal). AWS Batch's `command` and an ECS container override replace the
image's CMD, never its ENTRYPOINT, so what a backend submits is `run_command(...)` alone:
the arguments that follow the entrypoint. A local process runs the entrypoint followed by
the same arguments, exactly what a container of the image runs.

Imports nothing beyond the standard library: the Airflow side imports it at run time.
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

# The image's ENTRYPOINT: every container of the worker image starts with it.
WORKER_ENTRYPOINT: tuple[str, ...] = ("python", "-m", "workers")


def run_command(step_request: Mapping[str, Any]) -> list[str]:
    """The arguments after the entrypoint that run one shard of `step_request` (a StepRequest as a dict)."""
    return ["run", "--request", json.dumps(dict(step_request), sort_keys=True)]


def container_argv(entrypoint: Sequence[str] | None, command: Sequence[str]) -> list[str]:
    """What a container runs: its entrypoint (None: the worker image's own) followed by the command."""
    return [*(WORKER_ENTRYPOINT if entrypoint is None else entrypoint), *command]
