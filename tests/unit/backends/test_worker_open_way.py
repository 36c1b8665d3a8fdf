"""As root, `mlbatch demo` and `mlbatch up` open the way for the local workers' uid (o+x only, never list)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from mlbatch.backends.local.worker_user import WorkerUser, closed_folder, open_way

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only a root task process switches its workers' uid")
WORKER = WorkerUser(10001, 10001)


def test_a_closed_folder_on_the_way_is_opened_for_entering_only_and_once(tmp_path):
    closed = tmp_path / "home"
    program = closed / "venv" / "bin" / "tool"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\necho reached\n")
    program.chmod(0o755)
    closed.chmod(0o700)
    tmp_path.chmod(0o711)
    assert closed_folder(str(program), WORKER) == closed

    assert open_way(WORKER, [str(program)]) == [closed]
    assert stat.S_IMODE(closed.stat().st_mode) == 0o701  # others may enter, not list
    assert open_way(WORKER, [str(program)]) == []  # nothing left to open
    ran = subprocess.run([str(program)], capture_output=True, text=True, user=WORKER.uid, group=WORKER.gid)
    assert ran.stdout.strip() == "reached"
    listed = subprocess.run([sys.executable, "-c", f"import os; os.listdir({str(closed)!r})"],
                            capture_output=True, text=True, user=WORKER.uid, group=WORKER.gid)
    assert "PermissionError" in listed.stderr
