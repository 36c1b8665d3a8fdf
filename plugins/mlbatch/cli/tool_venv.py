"""A tool in a virtualenv of its own under the user's cache folder, made once and reused.

For tools whose pins fight the project's own (the full `mlflow`, checkov): one pip install per
version, behind a file lock so two processes never build the same venv at once. A venv counts as
made only when its marker names the requirement, so an interrupted install is redone, not trusted.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

MARKER = "mlbatch-installed"  # written last: the requirement the venv holds


class ToolVenvError(RuntimeError):
    """The venv could not be made (no package index, a failed install): one line saying why."""


def cache_home() -> Path:
    """The user's cache folder (XDG_CACHE_HOME, else ~/.cache)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def is_ready(venv: Path, requirement: str) -> bool:
    marker = venv / MARKER
    return marker.is_file() and marker.read_text().strip() == requirement


def tool_venv(venv: Path, requirement: str, on_install=None, timeout_s: float = 1200) -> Path:
    """`venv` holding `requirement` (e.g. "mlflow==3.17.2"), made now if it is not; on_install(venv) first."""
    if is_ready(venv, requirement):
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    announce = on_install or (lambda _venv: None)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another process is making it: say so, wait, then find it made
            announce(venv)
            fcntl.flock(lock, fcntl.LOCK_EX)
            if is_ready(venv, requirement):
                return venv
        if not is_ready(venv, requirement):
            announce(venv)
            _install(venv, requirement, timeout_s)
    return venv


def _install(venv: Path, requirement: str, timeout_s: float) -> None:
    steps = ([sys.executable, "-m", "venv", "--clear", str(venv)],
             [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", requirement])
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ToolVenvError(f"`{' '.join(step[-2:])}` took over {timeout_s:.0f} s") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise ToolVenvError(f"could not install {requirement} into {venv}: {last}")
    (venv / MARKER).write_text(requirement + "\n")
