"""Run a worker step in-process, every shard, and commit it: what the operator does, minus Airflow."""
from __future__ import annotations

from pathlib import Path

from workers import artifacts
from workers.request import StepRequest
from workers.runner import run


def run_step(tmp: Path, name: str, worker: str, shards: int = 1, params: dict | None = None,
             inputs: dict | None = None) -> str:
    """Run every shard of a step and commit it; return its output URI."""
    output = str(tmp / name)
    for i in range(shards):
        run(StepRequest(worker, params or {}, inputs or {}, output, shard_index=i, shard_count=shards))
    artifacts.commit_step(output, shards)
    return output
