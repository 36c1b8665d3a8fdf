"""What each step of one DAG run did, kept beside the artifacts: the source of the success digest.

DAG-level callbacks run outside the task processes (in the dag-processor) where XCom is not
readable, so every step records its summary here as it succeeds.
"""
from __future__ import annotations

from typing import Any

from workers.artifacts import join, read_json, write_json

from mlbatch.paths import run_key


def run_dir(root: str, dag_id: str, run_id: str) -> str:
    return join(root, dag_id, "_runs", run_key(run_id))


def record_step(root: str, dag_id: str, run_id: str, step: str, summary: dict[str, Any]) -> None:
    write_json(join(run_dir(root, dag_id, run_id), f"{step}.json"), {"step": step, **summary})


def read_run(root: str, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """The recorded steps of a run, in the order they finished."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(run_dir(root, dag_id, run_id))
    if not fs.exists(path):
        return []
    files = [f for f in fs.ls(path, detail=False) if f.endswith(".json")]
    records = [read_json(f if "://" not in root else f"{root.split('://')[0]}://{f}") for f in files]
    return sorted(records, key=lambda record: record.get("finished_at", ""))
