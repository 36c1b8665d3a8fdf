"""A container's peak memory from its own cgroup: the kernel's high-water marks, not a sampled figure.

The engine's stats stream samples once a second, so a short step or a short spike went unseen (a
data step reported 3 MiB in one run, 81 in another). The kernel keeps the peaks itself: the
cgroup's `memory.peak` (cgroup v2) or `memory.max_usage_in_bytes` (v1), and each process's VmHWM,
the figure the local backend reports (its peak RSS, shared libraries included, which the cgroup
does not count when another container loaded them first). The peak is the larger of the two.
Both live only while the container does, so the follower reads them until the exit; where this
process cannot see the engine's cgroups (an engine on another machine, a scheduler in a
container), the stats stream is the fallback.
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
    """The larger of the cgroup's mark and its processes' peak RSS in MiB; None once the cgroup is gone."""
    try:
        cgroup = int(path.read_text().strip()) / _MIB
    except (OSError, ValueError):
        return None
    return max(cgroup, largest_process_peak_mib(path.parent))


def largest_process_peak_mib(cgroup: Path, proc: Path = Path("/proc")) -> float:
    """The largest VmHWM of the cgroup's processes (0 where this machine's /proc does not show them)."""
    try:
        pids = cgroup.joinpath("cgroup.procs").read_text().split()
    except OSError:
        return 0.0
    peak_kib = 0
    for pid in pids:
        try:
            status = proc.joinpath(pid, "status").read_text()
        except OSError:  # exited meanwhile, or another PID namespace
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak_kib = max(peak_kib, int(line.split()[1]))
    return peak_kib / 1024
