"""Where the project is, and the Airflow settings every command of it runs with.

`mlbatch` works from any folder inside a project: it walks up to the folder that holds
`dags/specs` (or a `mlbatch.toml`) and points Airflow at that project's dags, plugins, home
and artifacts, so `mlbatch ...` and `mlbatch airflow ...` see the same batches whatever the
working directory. A value the user set in the environment always wins.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import MutableMapping

MARKERS = ("dags/specs", "mlbatch.toml")  # what makes a folder a project root


def find_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above `start` (default: the working directory) with dags/specs
    or a mlbatch.toml; None outside any project."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / marker).exists() for marker in MARKERS):
            return folder
    return None


def project_settings(root: Path) -> dict[str, str]:
    """The Airflow and mlbatch settings of the project at `root`: its own Airflow home (SQLite),
    its dags and plugins folders, no example DAGs, its artifact folder."""
    values = {
        "AIRFLOW_HOME": str(root / "airflow_home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "MLBATCH_SETTINGS": str(root / "mlbatch.toml"),
    }
    if not _artifact_root_in(root / "mlbatch.toml"):  # the project's own setting wins over the default
        values["MLBATCH_ARTIFACTS"] = str(root / "artifacts")
    return values


def _artifact_root_in(settings_file: Path) -> bool:
    import tomllib

    try:
        return bool(tomllib.loads(settings_file.read_text()).get("artifacts", {}).get("root"))
    except (OSError, tomllib.TOMLDecodeError):
        return False  # absent, or broken: the settings loader reports a broken file where it is read


def configure(environ: MutableMapping[str, str] | None = None, start: Path | None = None) -> Path | None:
    """Put the project's settings into `environ` (default: this process's) where the user set none.

    Must run before anything imports Airflow, which reads its configuration once, at import.
    Returns the project root, or None outside a project (then nothing is set).
    """
    environ = os.environ if environ is None else environ
    root = find_root(start)
    if root is None:
        return None
    for name, value in project_settings(root).items():
        environ.setdefault(name, value)
    return root
