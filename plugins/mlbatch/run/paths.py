"""Where things live: the project root, the artifact root and each step's output URI.

Resolved when a step runs, never at DAG parse time, so pointing MLBATCH_ARTIFACTS at
another store needs no re-parse.
"""
from __future__ import annotations

import os
import re

from mlbatch.project import PROJECT_ROOT

__all__ = ["PROJECT_ROOT", "artifact_root", "run_key", "step_output_uri"]


def artifact_root() -> str:
    """The artifact root: MLBATCH_ARTIFACTS (any fsspec URI), else the settings' [artifacts] root, else ./artifacts."""
    if os.environ.get("MLBATCH_ARTIFACTS"):
        return os.environ["MLBATCH_ARTIFACTS"]
    from mlbatch.settings import load_settings

    return load_settings().artifacts.root or str(PROJECT_ROOT / "artifacts")


def run_key(run_id: str) -> str:
    """A path-safe key for one DAG run: every run writes under its own key."""
    return "run-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", run_id).strip("-")


def step_output_uri(root: str, dag_id: str, step: str, key: str) -> str:
    return f"{root.rstrip('/')}/{dag_id}/{step}/{key}"
