"""What a step container may touch: its user, its privileges, its filesystem and its mounts.

A step runs the code of whoever wrote its worker, so its container gets the least that still runs it:
a fixed uid that is never 0, no capability, no privilege gain, a bounded number of processes, a
read-only root filesystem with a tmpfs for scratch (`/tmp`, also its HOME), no network unless the
step or [docker] network asks for the host's (never Docker's bridge), the artifact root
read-only (its inputs, other batches' latest outputs) and, writable, its own shard folder alone, so
that it cannot overwrite what another step or batch wrote. Local source files are mounted read-only
at their own path. docs/docker-backend.md says who owns what a container writes.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mlbatch.backends.jobs import JobRequest

IMAGE_USER = "10001:10001"  # the worker image's own user (Dockerfile.worker)
SCRATCH = "/tmp"  # the only writable place besides the shard folder; HOME too, for library caches


def container_user(artifacts: Path | None, configured: str | None) -> str:
    """'uid:gid' of a container: [docker] user, else the artifact root's owner unless that is root, else 10001."""
    if configured:
        return configured
    if artifacts is not None and artifacts.exists():
        info = artifacts.stat()
        if info.st_uid != 0:
            return f"{info.st_uid}:{info.st_gid}"
    return IMAGE_USER


def network_mode(request: JobRequest, configured: str) -> str:
    """The container's network: the step's own `network:` over [docker] network (none unless set); never the bridge."""
    return request.network or configured


def hardening(user: str, pids_limit: int, memory_mib: int) -> dict[str, Any]:
    """create() arguments that take every privilege the worker does not need."""
    return {
        "user": user,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "pids_limit": pids_limit,
        "read_only": True,
        # tmpfs pages count against the memory limit: scratch can never exceed the step's budget
        "tmpfs": {SCRATCH: f"rw,nosuid,nodev,size={memory_mib}m,mode=1777"},
    }


def step_request_of(request: JobRequest) -> dict[str, Any]:
    """The step request carried by `run --request JSON` ({} for another command)."""
    command = list(request.command)
    if "--request" not in command[:-1]:
        return {}
    try:
        value = json.loads(command[command.index("--request") + 1])
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def shard_folder(request: JobRequest, index: int) -> Path | None:
    """The local folder shard `index` writes (its output's shard-NNNNN), None for an object store."""
    from workers.artifacts import shard_dir

    output = request.step_output or str(step_request_of(request).get("output") or "")
    if not output or ("://" in output and not output.startswith("file://")):
        return None
    return Path(shard_dir(output.removeprefix("file://"), index)).resolve()


def local_sources(request: JobRequest) -> list[tuple[str, Path]]:
    """(as written, resolved path) of every existing local file the worker's params read directly."""
    from mlbatch.backends.shared_paths import local_file_params

    step = step_request_of(request)
    paths = [(value, Path(value.removeprefix("file://")))
             for _, value in local_file_params(str(step.get("worker")), step.get("params") or {})]
    # a missing file is left to the worker, which reports it as bad input
    return [(value, path.resolve()) for value, path in paths if path.exists()]


def volumes(request: JobRequest, index: int, artifacts: Path | None) -> dict[str, dict[str, str]]:
    """Bind mounts, each at its own path (a URI means the same file on both sides): read-only but the shard folder."""
    binds: dict[str, dict[str, str]] = {}
    root = artifacts.resolve() if artifacts is not None else None
    if root is not None:
        binds[str(root)] = {"bind": str(root), "mode": "ro"}
        shard = shard_folder(request, index)
        if shard is not None and shard.is_relative_to(root):
            binds[str(shard)] = {"bind": str(shard), "mode": "rw"}
    for _, path in local_sources(request):
        if root is None or not path.is_relative_to(root):
            binds[str(path)] = {"bind": str(path), "mode": "ro"}
    return binds


def needs_working_dir(request: JobRequest, artifacts: Path | None) -> bool:
    """Whether a relative path (the root or a source) must resolve from the task's own working directory."""
    relative_root = artifacts is not None and not artifacts.is_absolute()
    return relative_root or any(not Path(value.removeprefix("file://")).is_absolute()
                                      for value, _ in local_sources(request))


def prepare_writable(kwargs: dict[str, Any]) -> None:
    """Create each writable mount's folder before the start, writable by the container's user.

    Run as root, the operator hands the folder to that uid (and can still rename or remove what it
    writes); run as another user, the container runs as that user unless [docker] user says
    otherwise, and then the folder is opened to everyone (its parent stays the operator's).
    """
    uid, _, gid = str(kwargs.get("user") or IMAGE_USER).partition(":")
    for path, spec in (kwargs.get("volumes") or {}).items():
        if spec.get("mode") != "rw":
            continue
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(folder, int(uid), int(gid or uid))
        elif folder.stat().st_uid != int(uid):
            folder.chmod(0o777)
