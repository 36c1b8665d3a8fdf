"""A container's peak memory from its own cgroup: the kernel's high-water mark, not a sampled figure.

The engine's stats stream samples once a second, so a short step or a short spike went unseen (a
data step reported 3 MiB in one run, 81 in another). The cgroup keeps the peak itself:
`memory.peak` (cgroup v2) or `memory.max_usage_in_bytes` (v1). It lives only while the container
does, so the follower reads it until the exit; where this process cannot see the engine's cgroups
(an engine on another machine, a scheduler in a container), the stats stream is the fallback.
"""
from __future__ import annotations

from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
_MIB = 1024 * 1024
# where Docker puts a container's memory cgroup: (v1 or v2) x (cgroupfs or systemd driver)
_PEAK_FILES = (
    "memory/docker/{id}/memory.max_usage_in_bytes",
    "memory/system.slice/docker-{id}.scope/memory.max_usage_in_bytes",
    "docker/{id}/memory.peak",
    "system.slice/docker-{id}.scope/memory.peak",
)


def peak_file(container_id: str, root: Path = CGROUP_ROOT) -> Path | None:
    """The file holding the container's memory high-water mark, if this machine shows it."""
    for pattern in _PEAK_FILES:
        path = root / pattern.format(id=container_id)
        if path.is_file():
            return path
    return None


def read_peak_mib(path: Path) -> float | None:
    """The high-water mark in MiB; None once the cgroup is gone (the container ended)."""
    try:
        return int(path.read_text().strip()) / _MIB
    except (OSError, ValueError):
        return None
