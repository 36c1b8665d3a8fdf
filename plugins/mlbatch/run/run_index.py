"""What each step of one DAG run did, kept beside the artifacts: the source of the success digest.

DAG-level callbacks run outside the task processes (in the dag-processor) where XCom is not
readable, so every step records its summary here as it succeeds.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from workers.artifacts import join, write_json

from mlbatch.run.paths import run_key


def run_dir(root: str, dag_id: str, run_id: str) -> str:
    return join(root, dag_id, "_runs", run_key(run_id))


def record_step(root: str, dag_id: str, run_id: str, step: str, summary: dict[str, Any]) -> None:
    finished_at = datetime.now(timezone.utc).isoformat()
    write_json(join(run_dir(root, dag_id, run_id), f"{step}.json"), {"step": step, **summary, "finished_at": finished_at})


def read_run(root: str, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """The recorded steps of a run, in the order they finished."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(run_dir(root, dag_id, run_id))
    if not fs.exists(path):
        return []
    records = [json.loads(fs.cat_file(f)) for f in fs.ls(path, detail=False) if f.endswith(".json")]
    return sorted(records, key=lambda record: record["finished_at"])
