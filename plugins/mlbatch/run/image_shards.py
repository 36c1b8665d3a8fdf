"""The orchestrator's side of an image step (docs/image-steps.md): its inputs file, and the commit of each
shard, which a command with nothing of mlbatch inside cannot write itself.

A shard that exited 0 and wrote files into its MLBATCH_OUTPUT is committed here (workers.step_output's
shard manifest: the files it wrote, its metrics.json), also when a sibling failed, so that a retry
runs only the failed shards. Exit 0 with nothing written, an unreadable metrics.json and a command
the image lacks (exit 127) are failures of their own.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from workers import wire
from workers.artifacts import filesystem, join, read_bytes, write_json
from workers.step_output import MANIFEST, StepOutput

from mlbatch.backends.failures import FailureClass
from mlbatch.backends.jobs import JobResult, ShardOutcome
from mlbatch.backends.traits import backend_info

if TYPE_CHECKING:
    from mlbatch.spec.models import ResolvedStep

WORKER = "image"  # the shard manifests' worker: a command of the step's image, not a worker of a catalogue


class ShardProblem(Exception):
    """What makes a shard that exited 0 a failure: no output, a metrics.json that is not {name: number}."""


def write_inputs(output: str, inputs: dict[str, str]) -> str:
    """MLBATCH_INPUTS: a JSON file {input step: its output URI} in the step's output (never inline data)."""
    return write_json(join(output, wire.INPUTS_FILE), dict(sorted(inputs.items())))


def make_shard_folders(output: str, indices: list[int]) -> None:
    """Each shard's MLBATCH_OUTPUT exists before its command starts (object stores have no folders)."""
    fs, _ = filesystem(output)
    for index in indices:
        fs.makedirs(filesystem(StepOutput(output).shard_dir(index))[1], exist_ok=True)


def explained(result: JobResult, step: ResolvedStep) -> JobResult:
    """A failed shard that exited 127 (the command is not in the image): a code error no retry fixes."""
    outcomes = [_not_found(outcome, step) if outcome.exit_code == wire.COMMAND_NOT_FOUND_EXIT_CODE
                and not outcome.ok else outcome for outcome in result.outcomes]
    return result.model_copy(update={"outcomes": outcomes})


def _not_found(outcome: ShardOutcome, step: ResolvedStep) -> ShardOutcome:
    program = (step.command or ("?",))[0]
    where = f"in image {step.image}" if backend_info(step.backend).in_containers else "on this machine's PATH"
    reason = (f"command not found {where}: {program!r} (step {step.name}, field command): install it in the "
              "image or fix command:")
    return outcome.model_copy(update={"failure": FailureClass.code_error, "reason": reason, "final": True})


def commit_written(output: str, result: JobResult, *, params: dict[str, Any], try_number: int) -> JobResult:
    """Commit every shard that exited 0 and wrote its output; those that did not become failures."""
    outcomes = []
    for outcome in result.outcomes:
        if outcome.ok:
            try:
                commit_shard(output, outcome, shard_count=result.shard_count, params=params, try_number=try_number)
            except ShardProblem as problem:
                outcome = outcome.model_copy(update={"failure": FailureClass.code_error, "reason": str(problem)})
        outcomes.append(outcome)
    return result.model_copy(update={"outcomes": outcomes})


def commit_shard(output: str, outcome: ShardOutcome, *, shard_count: int, params: dict[str, Any],
                 try_number: int) -> dict[str, Any]:
    """The shard manifest of one finished shard: the files in its folder, its metrics.json."""
    step_output = StepOutput(output)
    folder = step_output.shard_dir(outcome.index)
    files = _files(folder)
    if not files:
        raise ShardProblem(f"shard {outcome.index} wrote no output to MLBATCH_OUTPUT ({folder}): "
                           "write the shard's results there (an exit 0 with nothing written is a failure)")
    metrics = _metrics(folder, outcome.index) if wire.METRICS_FILE in files else {}
    finished = datetime.now(timezone.utc)
    return step_output.commit_shard(
        outcome.index, worker=WORKER, shard_count=shard_count, try_number=try_number, params=params,
        counts={"files": len(files), "bytes": sum(files.values())}, metrics=metrics,
        outputs={name: join(folder, name) for name in sorted(files)},
        started_at=finished - timedelta(seconds=outcome.duration_s), finished_at=finished)


def _files(folder: str) -> dict[str, int]:
    """Relative path -> size of every file in a shard folder (its manifest aside)."""
    fs, path = filesystem(folder)
    fs.invalidate_cache(path)
    try:
        found = fs.find(path, detail=True)
    except FileNotFoundError:
        return {}
    prefix = path.rstrip("/") + "/"
    files = {name[len(prefix):]: int(info.get("size") or 0) for name, info in found.items()
             if info.get("type") != "directory" and name.startswith(prefix)}
    files.pop(MANIFEST, None)
    return files


def _metrics(folder: str, index: int) -> dict[str, float]:
    try:
        metrics = json.loads(read_bytes(join(folder, wire.METRICS_FILE)))
    except ValueError as error:
        raise ShardProblem(f"shard {index}: {wire.METRICS_FILE} is not JSON ({error}): write a flat "
                           "{name: number} object") from None
    if not isinstance(metrics, dict) or not all(_number(v) for v in metrics.values()):
        raise ShardProblem(f"shard {index}: {wire.METRICS_FILE} must be a flat {{name: number}} object, "
                           f"got {json.dumps(metrics)[:120]}")
    return metrics


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)

