"""What one shard's container looks like: pure functions from a JobRequest to Docker's create arguments.

Nothing here talks to the engine, so every rule (limits, env, labels, the artifact mount, the
user, the mounts) is unit-tested without one. The keyword arguments are those of the Docker SDK's
`client.containers.create()`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from workers import wire

from mlbatch.backends.environment import shard_command, shard_environment
from mlbatch.backends.docker import isolation
from mlbatch.backends.jobs import JobRequest
from mlbatch.backends.traits import local_directory

LABEL_PREFIX = "mlbatch."
IDENTITY_LABEL = "mlbatch.identity"
SHARD_LABEL = "mlbatch.shard"
NAME_LABEL = "mlbatch.name"
# the request's tags (dag, step, run, try, key, owner) each become mlbatch.<tag>
_NANO = 1_000_000_000
_MIB = 1024 * 1024


@dataclass(frozen=True)
class HostFacts:
    """What the container config depends on besides the request: read once per run."""

    cpus: int  # CPUs of the Docker host: a --cpus above it is refused by the engine
    network: str = "none"  # [docker] network, "none" or "host" (never the bridge): a step's own network wins
    pull: bool = False  # pull an image the host lacks ([docker] pull)
    passed_env: Mapping[str, str] = field(default_factory=dict)  # the [docker] pass_env values
    user: str | None = None  # [docker] user; None: the artifact root's owner unless root, else the image's
    pids_limit: int = 1024  # [docker] pids_limit


def local_artifact_dir(root: str) -> Path | None:
    """The host directory of a local artifact root (a path or file://), None for an object store."""
    directory = local_directory(root)
    return None if directory is None else Path(directory)


def container_env(request: JobRequest, index: int, passed_env: Mapping[str, str] = ()) -> dict[str, str]:
    """The shard's environment: thread caps, request.env and the shard identity, as the local backend gives.

    Unlike a local process a container inherits nothing of the task's environment (its PATH,
    PYTHONPATH or Airflow's secrets mean nothing inside the image); only [docker] pass_env names pass.
    """
    return shard_environment(request, wire.shard_env(request.shard_count, index), passed=passed_env)


def container_labels(request: JobRequest, index: int) -> dict[str, str]:
    """Labels that find this shard's container again: identity + shard, plus the request's tags for people."""
    labels = {f"{LABEL_PREFIX}{key}": value for key, value in request.tags.items()}
    labels.update({IDENTITY_LABEL: request.identity, SHARD_LABEL: str(index), NAME_LABEL: request.name})
    return labels


def container_name(request: JobRequest, index: int) -> str | None:
    """A name unique per identity and shard, so the engine itself refuses a duplicate; None without identity."""
    if not request.identity:
        return None
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.name).strip(".-")[:80] or "step"
    return f"mlbatch-{base}-{request.identity[:16]}-s{index}"


def identity_filter(identity: str, index: int | None = None) -> dict[str, Any]:
    """Docker's `filters` for the containers of an identity (and one shard of it)."""
    labels = [f"{IDENTITY_LABEL}={identity}"]
    if index is not None:
        labels.append(f"{SHARD_LABEL}={index}")
    return {"label": labels}


def container_kwargs(request: JobRequest, index: int, host: HostFacts) -> dict[str, Any]:
    """Keyword arguments of `containers.create()` for shard `index` (device requests added by the caller)."""
    cpus = min(request.vcpu, float(host.cpus))
    memory = request.memory_mib * _MIB
    kwargs: dict[str, Any] = {
        "image": request.image,
        "command": shard_command(request, index),
        "environment": container_env(request, index, host.passed_env),
        "labels": container_labels(request, index),
        "nano_cpus": int(cpus * _NANO),
        "mem_limit": memory,
        "memswap_limit": memory,  # equal to mem_limit: no swap, the kernel kills at the budget
        "network_mode": isolation.network_mode(request, host.network),
        "init": True,  # a real PID 1: SIGTERM reaches the worker and zombies are reaped
        "detach": True,
        "stdin_open": False,
    }
    if request.entrypoint is not None:
        kwargs["entrypoint"] = list(request.entrypoint)
    if name := container_name(request, index):
        kwargs["name"] = name
    root = request.env.get("MLBATCH_ARTIFACTS", "")
    artifacts = local_artifact_dir(root) if root else None
    kwargs.update(isolation.hardening(isolation.container_user(artifacts, host.user), host.pids_limit,
                                      request.memory_mib))
    kwargs["environment"]["HOME"] = isolation.SCRATCH  # the image's home is on the read-only root
    if binds := isolation.volumes(request, index, artifacts):
        kwargs["volumes"] = binds
    if isolation.needs_working_dir(request, artifacts):  # a relative path means the same file from the same cwd
        kwargs["working_dir"] = str(Path.cwd())
    return kwargs


def passed_environment(names: list[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The values of the [docker] pass_env names that are set in this process's environment."""
    source = os.environ if environ is None else environ
    return {name: source[name] for name in names if name in source}
