"""Which uid a local worker runs as when the task process is root, and what that uid is given.

A root worker reads its task process's /proc/<pid>/environ on some kernels even without
CAP_SYS_PTRACE and with the task process non-dumpable. A worker of another uid cannot (the
kernel's ptrace access check), so a root task process starts each worker as an unprivileged
uid: `[local] user`, else the artifact root's owner unless root owns it, else 10001 (the uid
of the docker backend's containers). That uid gets what it needs and no more:

- its shard's output folder, handed to it (the rest of the artifact root stays read-only to it);
- a home of its own (`$TMPDIR/mlbatch-worker-<uid>`, mode 0700) for library caches
  (XDG_CACHE_HOME: torch, Hugging Face, pip; MPLCONFIGDIR), and a scratch TMPDIR per shard,
  removed when the shard is reaped;
- the file it writes its peak memory to.

A task process of any other user runs its workers as itself, unchanged: it cannot switch, and
its non-dumpable /proc files are root's already (privacy.py).
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlbatch.backends.docker.isolation import container_user, shard_folder
from mlbatch.backends.jobs import JobRequest
from mlbatch.backends.traits import local_directory


class WorkerUserError(OSError):
    """The worker's uid cannot be given what it needs; the message says what to change."""


@dataclass(frozen=True)
class WorkerUser:
    uid: int
    gid: int

    @property
    def home(self) -> Path:
        return Path(tempfile.gettempdir()) / f"mlbatch-worker-{self.uid}"


def worker_user(request: JobRequest, configured: str | None, euid: int | None = None) -> WorkerUser | None:
    """The uid:gid to run the request's workers as; None when this process is not root (no switch)."""
    if (os.geteuid() if euid is None else euid) != 0:
        return None
    root = local_directory(request.env.get("MLBATCH_ARTIFACTS", "") or "")
    uid, _, gid = container_user(Path(root) if root else None, configured).partition(":")
    return WorkerUser(int(uid), int(gid or uid))


def closed_folder(path: str, user: WorkerUser) -> Path | None:
    """The first folder on the way to `path` that `user` may not enter (its mode bits), None if it may."""
    for folder in reversed(Path(os.path.realpath(shutil.which(path) or path)).parents):
        try:
            info = folder.stat()
        except FileNotFoundError:
            return None  # created from here on by this process, enterable (0755)
        bit = (stat.S_IXUSR if info.st_uid == user.uid else stat.S_IXGRP if info.st_gid == user.gid
               else stat.S_IXOTH)
        if not info.st_mode & bit:
            return folder
    return None


def prepare(user: WorkerUser, request: JobRequest, index: int, peak_file: str, program: str) -> dict[str, str]:
    """Hand the shard's folder, a home and a scratch folder to `user`: the env entries that point at them."""
    shard = shard_folder(request, index)
    for needed in filter(None, (program, shard)):
        _require_reachable(str(needed), user)
    if shard is not None:
        shard.mkdir(parents=True, exist_ok=True)
        _give(shard, user)
    home = _own_home(user)
    scratch = Path(tempfile.mkdtemp(prefix="tmp-", dir=home))
    os.chown(scratch, user.uid, user.gid)
    os.chown(peak_file, user.uid, user.gid)
    return {"HOME": str(home), "TMPDIR": str(scratch), "XDG_CACHE_HOME": str(home / ".cache"),
            "MPLCONFIGDIR": str(home / ".config" / "matplotlib")}


def _require_reachable(path: str, user: WorkerUser) -> None:
    if (closed := closed_folder(path, user)) is not None:
        raise WorkerUserError(
            f"local workers run as uid {user.uid} (the task process is root) and cannot enter {closed} "
            f"(mode {stat.S_IMODE(closed.stat().st_mode):o}) on the way to {path}: let others enter it "
            f"(chmod o+x), set [local] user (MLBATCH_LOCAL_USER) to a uid that may, or run Airflow as an "
            "ordinary user")


def remove_scratch(env: dict[str, str] | None) -> None:
    """Remove the shard's scratch folder (what the worker left in TMPDIR); symlinks in it are not followed."""
    if env and "TMPDIR" in env:
        shutil.rmtree(env["TMPDIR"], ignore_errors=True)


def _give(folder: Path, user: WorkerUser) -> None:
    """The folder and what an earlier try left in it become the worker's (links are not followed)."""
    for path in (folder, *folder.rglob("*")):
        os.chown(path, user.uid, user.gid, follow_symlinks=False)


def _own_home(user: WorkerUser) -> Path:
    """The uid's home, created 0700; refused when it exists as a link or as anyone else's."""
    home = user.home
    try:
        os.mkdir(home, 0o700)
        os.chown(home, user.uid, user.gid)
    except FileExistsError:
        pass
    info = os.lstat(home)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != user.uid:
        raise WorkerUserError(f"{home} (the home of local workers of uid {user.uid}) is not a folder of that uid: "
                              "remove it, or set [local] user (MLBATCH_LOCAL_USER) to another uid")
    return home


def open_way(user: WorkerUser, paths: list[str]) -> list[Path]:
    """Let `user` enter (o+x: enter by name, never list) every folder on the way to `paths` it may not enter yet.

    For the one-machine commands (`mlbatch demo`, `mlbatch up`) run as root: a Python under /root (pyenv)
    or a checkout there would otherwise be out of the workers' reach. Returns the folders changed."""
    opened: list[Path] = []
    for path in paths:
        while (closed := closed_folder(path, user)) is not None:
            closed.chmod(stat.S_IMODE(closed.stat().st_mode) | stat.S_IXOTH)
            opened.append(closed)
    return opened
