"""The Docker Engine a run talks to, and the shard-level calls that can go wrong.

The Docker SDK for Python (docker==7.2.0), not the Airflow Docker provider: the provider's
DockerOperator runs one container per Airflow task and its DockerHook only hands back the same
SDK client, while a step here runs many shards, needs label lookups to reattach, stats and
separate stdout/stderr streams; the SDK gives all of that and reads DOCKER_HOST, DOCKER_TLS_VERIFY
and DOCKER_CERT_PATH itself. Never the `docker` CLI: no shell, no parsing of text output.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any

from mlbatch.backends.docker.config import identity_filter
from mlbatch.backends.docker.reattach import Found
from mlbatch.backends.slots import LocalSlots, default_directory


def connect(host: str | None, parallel: int) -> Any:
    """A client for [docker] host, else DOCKER_HOST, else the local socket; errors come now.

    Each running shard holds four streaming connections (stdout, stderr, stats, wait). The client
    asks the engine its API version as it is made, which is the reachability check: no ping besides.
    """
    import docker

    pool = 4 * max(1, parallel) + 4
    if host:
        return docker.DockerClient(base_url=host, max_pool_size=pool, version="auto")
    return docker.from_env(max_pool_size=pool, version="auto")


def where(host: str | None) -> str:
    return host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def is_local(host: str | None) -> bool:
    """Whether the engine runs on this machine (a socket), so a local path means the same folder to it."""
    return where(host).startswith(("unix://", "npipe://"))


def host_cpus(client: Any) -> int:
    return int(client.info().get("NCPU") or 1)


def host_slots(host: str | None, cpus: int) -> LocalSlots:
    """The vcpu slots of the Docker host: this machine's (shared with local steps) for the local engine,
    else slots of their own, as many as that host's CPUs, shared by every task of this machine using it."""
    if is_local(host):
        return LocalSlots()
    digest = hashlib.sha256(where(host).encode()).hexdigest()[:12]
    return LocalSlots(capacity=cpus, directory=default_directory() / f"docker-{digest}")


def existing(client: Any, identity: str, index: int) -> list[tuple[Any, Found]]:
    """Containers already there for this identity and shard (any state), with what reattach needs of them."""
    if not identity:
        return []
    containers = client.containers.list(all=True, filters=identity_filter(identity, index))
    return [(container, Found.of(container.attrs)) for container in containers]


def create(client: Any, kwargs: dict[str, Any], *, pull: bool) -> Any:
    """Create the container; with `pull`, an image the host lacks is pulled first (never by default)."""
    from docker.errors import ImageNotFound

    try:
        return client.containers.create(**kwargs)
    except ImageNotFound:
        if not pull:
            raise
    client.images.pull(kwargs["image"])
    return client.containers.create(**kwargs)


def gpu_request(count: int) -> list[Any]:
    from docker.types import DeviceRequest

    return [DeviceRequest(count=count, capabilities=[["gpu"]])]


def remove(container: Any) -> None:
    """Remove a container (stopping it first if it runs); gone already is fine."""
    try:
        container.remove(force=True)
    except Exception:  # already removed (by cancel, or by hand): nothing left to do
        pass


def signal(container: Any, name: str) -> None:
    try:
        container.kill(signal=name)
    except Exception:  # exited in between: its end is reported by its follower
        pass


def final_state(container: Any) -> dict[str, Any]:
    """The container's inspect State after it ended ({} if it was removed meanwhile)."""
    try:
        container.reload()
    except Exception:
        return {}
    return dict(container.attrs.get("State") or {})
