"""Running a worker step for a benchmark: in-process to prepare inputs (untimed), or through
LocalBackend exactly as a batch runs it (timed), then committed like the operator commits it."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbatch.backends.local import LocalBackend
from mlbatch.backends.slots import LocalSlots
from mlbatch.backends.jobs import JobRequest, JobResult
from workers import artifacts
from workers.request import StepRequest
from workers.runner import run as run_shard
from workers.wire import run_command


def in_process(output: Path, worker: str, params: dict, inputs: dict[str, str], shards: int = 1) -> str:
    """Every shard of a step in this process, committed; its output URI."""
    uri = str(output)
    for index in range(shards):
        run_shard(StepRequest(worker, params, inputs, uri, shard_index=index, shard_count=shards))
    artifacts.commit_step(uri, shards)
    return uri


@dataclass
class TimedStep:
    wall_s: float  # LocalBackend.run: what a batch waits for the step
    manifest: dict[str, Any]  # the committed step manifest
    result: JobResult


def through_local_backend(worker: str, params: dict, inputs: dict[str, str], output: str, shards: int, *,
                          memory_mib: int, slots: LocalSlots | None = None) -> TimedStep:
    """The step's shards as isolated workers at 1 vcpu each, timed, then committed; fails loudly."""
    step = {"worker": worker, "params": params, "inputs": inputs, "output": output}
    request = JobRequest(name=f"bench.{worker}", image="mlbatch-worker:cpu",
                         command=run_command(step),
                         vcpu=1, memory_mib=memory_mib, shard_count=shards)
    lines: list[str] = []
    began = time.perf_counter()
    result = LocalBackend(log=lines.append, slots=slots).run(request)
    wall = time.perf_counter() - began
    if not result.ok:
        raise RuntimeError(f"{worker} with {shards} shard(s) failed:\n{result.failure_report()}")
    return TimedStep(wall, artifacts.commit_step(output, shards), result)
