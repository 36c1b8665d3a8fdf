"""`mlbatch demo` and `mlbatch up` run as root: open the way for the local workers' own uid.

As root, the local backend starts each worker as an unprivileged uid (backends/local/worker_user.py);
that uid must run this Python and read the project and its artifacts. On a machine whose Python or
checkout lies under /root (mode 0700) it could not, and every step would fail at start. These two
commands are the one-machine path a person starts by hand, so they open the way themselves and say
what they changed; a deployment sets `[local] user` or runs Airflow as an ordinary user instead.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

from mlbatch.project import PROJECT_ROOT


def let_local_workers_in(echo: Callable[[str], None] = print) -> list[Path]:
    """As root: give others o+x on the folders above this Python, its venv, the project and the artifacts."""
    if os.geteuid() != 0:
        return []
    from mlbatch.backends.docker.isolation import container_user
    from mlbatch.backends.local.worker_user import WorkerUser, open_way
    from mlbatch.backends.traits import local_directory
    from mlbatch.run.paths import artifact_root
    from mlbatch.settings import load_settings

    artifacts = local_directory(artifact_root())
    uid, _, gid = container_user(Path(artifacts) if artifacts else None, load_settings().local.user).partition(":")
    user = WorkerUser(int(uid), int(gid or uid))
    folders = [sys.prefix, str(PROJECT_ROOT), *([artifacts] if artifacts else [])]
    # "/x": the way into each folder, the folder itself included
    opened = open_way(user, [os.path.realpath(sys.executable), *(str(Path(f) / "x") for f in folders)])
    if opened:
        echo(f"mlbatch: as root, local workers run as uid {user.uid}; let others enter (o+x, never list) "
             f"{', '.join(map(str, opened))} so that they can run this Python and read the project "
             "(set [local] user, or run as an ordinary user, to avoid it)")
    return opened
