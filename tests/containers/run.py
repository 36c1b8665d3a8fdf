"""Run one container of the worker image the way a Batch host or an ECS agent does, and say how it ended.

The AWS stand-in and the image tests share it, so what the tests check is what the stand-in
runs: the definition's entrypoint (none: the image's ENTRYPOINT) and the submitted command, the
environment, hard CPU and memory limits (swap equal to memory: a process over its budget is
killed by the kernel, not paged out), the host network only (moto on 127.0.0.1), and the
container removed once it has ended.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

MIB = 1024 * 1024


@dataclass(frozen=True)
class ContainerJob:
    image: str
    command: list[str]
    entrypoint: list[str] | None = None  # None: the image's ENTRYPOINT, as Batch and ECS run it
    environment: dict[str, str] = field(default_factory=dict)
    vcpu: float = 1.0
    memory_mib: int = 2048
    labels: dict[str, str] = field(default_factory=dict)
    network: str = "host"  # "host" or "none": never Docker's bridge network
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerExit:
    exit_code: int
    oom_killed: bool
    lines: list[str]
    killed: bool = False  # stopped from outside (TerminateJob / StopTask)


def argv_of(definition: dict[str, Any], override: dict[str, Any] | None) -> tuple[list[str] | None, list[str]]:
    """(entrypoint, command) a Batch or ECS container runs: an override's command replaces the definition's
    (the image's CMD), never the entrypoint; the definition's `entryPoint` (ECS only) replaces the image's."""
    command = (override or {}).get("command") or definition.get("command") or []
    return definition.get("entryPoint") or None, list(command)


def run(client: Any, job: ContainerJob, stopped: Callable[[], bool] = lambda: False,
        on_start: Callable[[Any], None] = lambda container: None) -> ContainerExit:
    """Run `job` to its end (or until `stopped()`: then kill it), collect its output, remove it."""
    if job.network not in ("host", "none"):
        raise ValueError(f"network {job.network!r}: only 'host' or 'none' (test traffic stays on 127.0.0.1)")
    container = client.containers.create(
        job.image, command=list(job.command), entrypoint=_entrypoint(job.entrypoint),
        environment=dict(job.environment), labels=dict(job.labels), network_mode=job.network,
        mem_limit=job.memory_mib * MIB, memswap_limit=job.memory_mib * MIB, nano_cpus=int(job.vcpu * 1e9),
        volumes=job.volumes or None)
    try:
        container.start()
        on_start(container)
        lines: list[str] = []
        reader = threading.Thread(target=_read_lines, args=(container, lines), daemon=True)
        reader.start()
        killed = _wait(container, stopped)
        reader.join(10)
        container.reload()
        state = container.attrs["State"]
        return ContainerExit(int(state["ExitCode"]), bool(state.get("OOMKilled")), lines, killed)
    finally:
        container.remove(force=True)


def _entrypoint(entrypoint: Sequence[str] | None) -> list[str] | None:
    return None if entrypoint is None else list(entrypoint)


def _read_lines(container: Any, lines: list[str]) -> None:
    """stdout and stderr, interleaved as written, one entry per line."""
    pending = b""
    for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        lines.extend(line.decode("utf-8", "replace") for line in complete)
    if pending:
        lines.append(pending.decode("utf-8", "replace"))


def _wait(container: Any, stopped: Callable[[], bool]) -> bool:
    """Until the container exits; kill it (SIGKILL, as StopTask does after its grace) once `stopped()`."""
    import docker
    import requests

    killed = False
    while True:
        try:
            container.wait(timeout=0.2)
            return killed
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):  # still running
            pass
        if stopped() and not killed:
            try:
                container.kill()
            except docker.errors.APIError:  # it ended in between
                pass
            killed = True
        time.sleep(0.01)
