"""A container's peak memory from the kernel's marks: its cgroup's, and its largest process's peak RSS."""
from __future__ import annotations

from pathlib import Path

from mlbatch.backends.docker.memory import largest_process_peak_mib, peak_file, read_peak_mib


def _cgroup(root: Path, container_id: str, peak_bytes: int, pids: list[int]) -> Path:
    folder = root / "memory" / "docker" / container_id  # cgroup v1, cgroupfs driver
    folder.mkdir(parents=True)
    (folder / "memory.max_usage_in_bytes").write_text(f"{peak_bytes}\n")
    (folder / "cgroup.procs").write_text("".join(f"{pid}\n" for pid in pids))
    return folder


def test_the_peak_is_the_cgroups_mark_or_the_largest_process_peak_whichever_is_larger(tmp_path: Path) -> None:
    folder = _cgroup(tmp_path / "cgroup", "abc", 300 * 1024 * 1024, [999999997, 999999998, 999999999])
    proc = tmp_path / "proc"
    for pid, hwm_kib in ((999999997, 2048), (999999998, 320 * 1024)):  # the third exited meanwhile
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "status").write_text(f"Name:\tpython\nVmHWM:\t  {hwm_kib} kB\nVmRSS:\t 1 kB\n")
    assert peak_file("abc", tmp_path / "cgroup") == folder / "memory.max_usage_in_bytes"
    assert peak_file("other", tmp_path / "cgroup") is None  # not this machine's engine: the stats stream
    assert largest_process_peak_mib(folder, proc) == 320.0
    assert read_peak_mib(folder / "memory.max_usage_in_bytes") == 300.0  # no such pids in this /proc
    (folder / "memory.max_usage_in_bytes").unlink()
    assert read_peak_mib(folder / "memory.max_usage_in_bytes") is None  # the container ended
