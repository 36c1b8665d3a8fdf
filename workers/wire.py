"""The wire contract between the orchestrator (plugins/) and a worker: how a shard is started.

Everything a backend tells a worker is here, once: the step request and the argv that
carries it, the environment variable names, and how a list of shards is written down.
The orchestrator writes with these functions, the worker (workers/request.py) reads with
them; no other module spells the variable names.

A worker image's ENTRYPOINT is `WORKER_ENTRYPOINT` (Dockerfile.worker says the same, and a
test holds them equal). AWS Batch's `command` and an ECS container override replace the
image's CMD, never its ENTRYPOINT, so what a backend submits is `run_command(...)` alone:
the arguments that follow the entrypoint. A local process runs the entrypoint followed by
the same arguments, exactly what a container of the image runs.

Image steps (`image:` + `command:`, nothing of mlbatch inside the image) get the same shard
variables and a few of their own: the contract below the step request, and docs/image-steps.md.

Imports nothing beyond the standard library: the Airflow side imports it at run time.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

# The image's ENTRYPOINT: every container of the worker image starts with it.
WORKER_ENTRYPOINT: tuple[str, ...] = ("python", "-m", "workers")

# -- environment variable names ------------------------------------------------------
SHARD_INDEX = "MLBATCH_SHARD_INDEX"  # the shard this worker runs (wins over everything below)
SHARD_COUNT = "MLBATCH_SHARD_COUNT"  # how many shards the step has in all
SHARD_MAP = "MLBATCH_SHARD_MAP"  # array child i runs the i-th shard of this range list ("3,7-9")
SHARD_MAP_URI = "MLBATCH_SHARD_MAP_URI"  # the same list in a file, when too long for the environment
ARRAY_INDEX = "AWS_BATCH_JOB_ARRAY_INDEX"  # set by AWS Batch in each child of an array job
TRY_NUMBER = "MLBATCH_TRY_NUMBER"  # the Airflow try this worker belongs to
ARTIFACTS = "MLBATCH_ARTIFACTS"  # the artifact root (any fsspec URI)
GPU = "MLBATCH_GPU"  # the GPUs the step asked for (a worker says when it finds none)
PEAK_FILE = "MLBATCH_PEAK_FILE"  # where the worker writes its own peak memory at exit (workers.peak)
# image steps (docs/image-steps.md): what a command with nothing of mlbatch inside reads
PARAMS = "MLBATCH_PARAMS"  # the step's params as JSON
INPUTS = "MLBATCH_INPUTS"  # path/URI of a JSON file {input step: its output path or URI}
OUTPUT = "MLBATCH_OUTPUT"  # this shard's own folder (path or URI): everything it writes goes there
STEP_OUTPUT = "MLBATCH_STEP_OUTPUT"  # the step's output; a shard's folder is shard-NNNNN in it

# -- how a worker says its input is wrong -----------------------------------------------
# 65 is EX_DATAERR in sysexits.h: the input is wrong, so retrying cannot help. The reason is
# one stderr line after the prefix; the orchestrator classifies the exit as bad input.
BAD_INPUT_EXIT_CODE = 65
BAD_INPUT_PREFIX = "mlbatch-bad-input:"


def bad_input_line(reason: str) -> str:
    """The one stderr line a worker writes before exiting with BAD_INPUT_EXIT_CODE."""
    return f"{BAD_INPUT_PREFIX} {' '.join(reason.split())}"


def bad_input_reason(line: str) -> str | None:
    """The reason a bad-input line gives ('' when it gives none); None for any other line."""
    text = line.strip()
    return text[len(BAD_INPUT_PREFIX):].strip() if text.startswith(BAD_INPUT_PREFIX) else None


# -- how a worker says the machine or a service failed ------------------------------------
# 75 is EX_TEMPFAIL in sysexits.h: a full disk, an S3 or network hiccup; a retry may pass.
TRANSIENT_EXIT_CODE = 75
TRANSIENT_PREFIX = "mlbatch-infrastructure:"


def transient_line(reason: str) -> str:
    """The one stderr line a worker writes before exiting with TRANSIENT_EXIT_CODE."""
    return f"{TRANSIENT_PREFIX} {' '.join(reason.split())}"


# -- image steps: what the shard writes and how its command is filled in ------------------
METRICS_FILE = "metrics.json"  # flat {name: number} in MLBATCH_OUTPUT: the shard's metrics
INPUTS_FILE = "inputs.json"  # MLBATCH_INPUTS names this file in the step's output
COMMAND_NOT_FOUND_EXIT_CODE = 127  # what a shell and a container runtime answer for a missing program
_PLACEHOLDER = re.compile(r"\{(params\.[A-Za-z_][A-Za-z0-9_]*|shard\.index|shard\.count)\}")


def placeholders(argv: Sequence[str]) -> list[str]:
    """The placeholders a command uses, in order: 'params.NAME', 'shard.index', 'shard.count'."""
    return [match.group(1) for arg in argv for match in _PLACEHOLDER.finditer(arg)]


def fill_params(argv: Sequence[str], params: Mapping[str, Any]) -> list[str]:
    """{params.NAME} replaced by the param (JSON for lists and mappings); {shard.*} left for each shard."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if not name.startswith("params."):
            return match.group(0)
        found = params[name[len("params."):]]
        return found if isinstance(found, str) else json.dumps(found)

    return [_PLACEHOLDER.sub(value, arg) for arg in argv]


def fill_shard(argv: Sequence[str], index: int, shard_count: int) -> list[str]:
    """{shard.index} and {shard.count} replaced for one shard."""
    values = {"shard.index": str(index), "shard.count": str(shard_count)}
    return [_PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), arg) for arg in argv]


def image_env(*, params: Mapping[str, Any], inputs_uri: str) -> dict[str, str]:
    """What every shard of an image step shares: its params and its inputs file (the backend adds the
    outputs: STEP_OUTPUT, and OUTPUT wherever a shard's index is known)."""
    return {PARAMS: json.dumps(dict(params), sort_keys=True), INPUTS: inputs_uri}


# The fields of a step request (workers.request.StepRequest holds the same, a test checks).
REQUEST_FIELDS = ("worker", "params", "inputs", "output", "shard_index", "shard_count", "try_number")


def step_request(*, worker: str, params: Mapping[str, Any], inputs: Mapping[str, str], output: str,
                 shard_count: int) -> dict[str, Any]:
    """The step request every shard of a step gets; each learns its own shard from `shard_env`."""
    return {"worker": worker, "params": dict(params), "inputs": dict(inputs), "output": output,
            "shard_index": 0, "shard_count": shard_count}


def run_command(step_request: Mapping[str, Any]) -> list[str]:
    """The arguments after the entrypoint that run one shard of `step_request` (a StepRequest as a dict)."""
    return ["run", "--request", json.dumps(dict(step_request), sort_keys=True)]


def container_argv(entrypoint: Sequence[str] | None, command: Sequence[str]) -> list[str]:
    """What a container runs: its entrypoint (None: the worker image's own) followed by the command."""
    return [*(WORKER_ENTRYPOINT if entrypoint is None else entrypoint), *command]


def try_env(*, try_number: int, artifacts: str, gpu: int = 0) -> dict[str, str]:
    """What every shard of one try shares: its try number, the artifact root, the GPUs asked for."""
    env = {TRY_NUMBER: str(try_number), ARTIFACTS: artifacts}
    if gpu:
        env[GPU] = str(gpu)
    return env


def shard_env(shard_count: int, index: int | None = None, *, shard_map: Sequence[int] | None = None,
              shard_map_uri: str | None = None) -> dict[str, str]:
    """How a worker learns its shard: its own index, or (array children) a list or a file of the list."""
    env = {SHARD_COUNT: str(shard_count)}
    if index is not None:
        env[SHARD_INDEX] = str(index)
    if shard_map is not None:
        env[SHARD_MAP] = encode_ranges(shard_map)
    if shard_map_uri:
        env[SHARD_MAP_URI] = shard_map_uri
    return env


def encode_ranges(indices: Iterable[int]) -> str:
    """[0, 1, 2, 3, 7] -> '0-3,7': a shard list kept short for the environment and for log lines."""
    parts: list[str] = []
    start = prev = None
    for i in sorted(indices):
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = i
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(parts)


def decode_ranges(text: str) -> list[int]:
    """'1,3-5,9' -> [1, 3, 4, 5, 9]; ValueError when it is not such a list."""
    shards: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            first, _, last = part.partition("-")
            shards += range(int(first), int(last or first) + 1)
    except ValueError:
        raise ValueError(f"{text!r} is not a list of ints and ranges like '1,3-5'") from None
    return shards


def shard_map_from(env: Mapping[str, str], read_text: Callable[[str], str]) -> list[int] | None:
    """The shard list of a partial array (inline, or in the file `read_text` reads); None: children 0..n-1."""
    if env.get(SHARD_MAP, "").strip():
        return decode_ranges(env[SHARD_MAP])
    if env.get(SHARD_MAP_URI):
        return decode_ranges(read_text(env[SHARD_MAP_URI]))
    return None
