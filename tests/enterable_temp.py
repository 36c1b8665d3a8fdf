"""Test folders a local worker of another uid can enter.

Run as root (as CI runs), the local backend starts each worker as an unprivileged uid
(`[local] user`, mlbatch.backends.local.worker_user), while pytest and tempfile make their
folders 0700: nothing under them could be read by that worker. As root, these folders become
0711: enterable by a path the worker is given, never listable.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from _pytest.tmpdir import TempPathFactory

ENTERABLE = 0o711


def make_enterable(*folders: Path) -> None:
    if os.geteuid() == 0:
        for folder in folders:
            folder.chmod(ENTERABLE)


def patch_pytest_temp_dirs() -> None:
    """Every tmp_path / tmp_path_factory folder, and the base folders above them, made enterable."""
    mktemp = TempPathFactory.mktemp
    if getattr(mktemp, "enterable", False):
        return

    def enterable_mktemp(self: TempPathFactory, basename: str, numbered: bool = True) -> Path:
        path = mktemp(self, basename, numbered)
        base = self.getbasetemp()
        make_enterable(*([base.parent] if base.parent.name.startswith("pytest-of-") else []), base, path)
        return path

    enterable_mktemp.enterable = True  # type: ignore[attr-defined]
    TempPathFactory.mktemp = enterable_mktemp  # type: ignore[method-assign]


def let_workers_run_this_python() -> None:
    """As root, give others o+x on the folders above this interpreter (a pyenv under /root, 0700), as
    `mlbatch up --postgres` does for its data folder: a worker of another uid must run it and read its stdlib."""
    if os.geteuid() != 0:
        return
    for folder in Path(os.path.realpath(sys.executable)).parents:
        mode = folder.stat().st_mode
        if not mode & 0o001:
            folder.chmod(mode | 0o001)
