"""A worker's own peak resident memory, written where the local backend asked for it.

Why not the rusage the parent gets from wait4: Linux folds the spawning process's high-water
mark into a child's ru_maxrss at exec, so a worker started by a 600 MiB task process reports at
least 600 MiB whatever it used. VmHWM counts the memory of this program alone, since its exec.
"""
from __future__ import annotations

import resource
import sys


def own_peak_rss_mib() -> float:
    """This process's peak resident memory in MiB (VmHWM on Linux; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def write_peak(path: str) -> None:
    """Write the peak (MiB, as text) to `path`; a failure to write costs only the figure."""
    try:
        with open(path, "w", encoding="ascii") as out:
            out.write(f"{own_peak_rss_mib():.1f}\n")
    except OSError:
        pass


def read_peak(path: str) -> float | None:
    """The figure a worker wrote to `path`, None when it wrote none (killed, or not an mlbatch worker)."""
    try:
        with open(path, encoding="ascii") as source:
            return float(source.read().strip())
    except (OSError, ValueError):
        return None
