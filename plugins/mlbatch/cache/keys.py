"""Cache keys of step outputs: a step's output lives under a hash of everything it is computed from.

A key covers the worker, its params in canonical form, the keys of its inputs (so a change
upstream changes every key downstream), the shard count and the version of the worker code.
Two steps with the same key compute the same thing, so the second one reuses the first's
committed output instead of launching a worker. Each shard's identity is the key plus its
shard-NNNNN folder under it.

Imported when a step runs, never at DAG parse time; only the stdlib at module level.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

from mlbatch.project import PROJECT_ROOT

KEY_LENGTH = 20  # hex characters: 80 bits, no collision among any realistic number of outputs
CACHE_ENV = "MLBATCH_CACHE"
CONF_KEY = "cache"  # the DAG run conf entry: airflow dags trigger --conf '{"cache": "refresh"}'
USE, REFRESH = "use", "refresh"
MODES = (USE, REFRESH)
# Params a worker reads data through, outside the step inputs (declared in workers/params.py):
# "file" is a path/URI read directly, "latest" a 'BATCH.STEP' reference to another batch's output.
EXTERNAL_INPUT = "mlbatch_input"
CODE_MARK = "mlbatch_code"  # a param naming code the worker calls (workers/call_params.py says the same)

_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")


# --- canonical form ------------------------------------------------------------

def canonical(value: Any) -> Any:
    """`value` with the differences that do not change meaning removed.

    Integral floats become ints (2.0 and 2 are one param value, whichever way a YAML
    file or a validator wrote it) and tuples become lists; key order is handled by
    canonical_json. Non-finite floats have no JSON form and are refused.
    """
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cache key: {value!r} has no canonical form")
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars, without importing numpy
        return canonical(value.item())
    raise TypeError(f"cache key: {type(value).__name__} value {value!r} has no canonical form")


def canonical_json(value: Any) -> str:
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


# --- code version ----------------------------------------------------------------

def code_version(image: str | None = None, worker: str | None = None) -> str:
    """What identifies the worker code: the image digest when pinned by one, else the source of the
    worker's own package (workers/ for the project's catalogue, a worker package's own folder for
    its workers), so a change to that package is a miss and a change elsewhere is not."""
    if image and (match := _DIGEST.search(image)):
        return f"image:{match.group(1)}"
    from workers.registry import get_worker

    package = get_worker(worker).package if worker is not None else "workers"
    if package == "workers":
        return "workers:" + source_digest(str(PROJECT_ROOT / "workers"))
    return package_version(package, f"worker {worker!r}")


def package_version(package: str, whose: str, folder: str | None = None) -> str:
    """'PACKAGE:sha256' of a top-level package's source (or a one-module package's file), found without
    importing it: in `folder` first when given, then on sys.path."""
    import importlib.machinery
    import importlib.util

    # where its source is: the folder, else wherever an import would look (editable installs too)
    spec = (importlib.machinery.PathFinder.find_spec(package, [folder]) if folder else None) \
        or importlib.util.find_spec(package)
    if spec is None or spec.origin is None and not spec.submodule_search_locations:
        raise ValueError(f"{whose}: its package {package!r} is not importable here")
    if spec.submodule_search_locations:
        return f"{package}:" + source_digest(list(spec.submodule_search_locations)[0])
    return f"{package}:" + hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()  # a one-module package


def called_code_versions(worker: str, params: Mapping[str, Any]) -> list[str]:
    """The versions of the code a worker calls by reference: a param marked `mlbatch_code` names it
    ("module:qualname"; python.call's `function`), and its package's source is part of the key. The
    mark's value may name the param of a folder the package is looked for first (python.call's `code`)."""
    from workers.registry import get_worker

    versions = []
    for name, field in get_worker(worker).params.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get(CODE_MARK) and isinstance(params.get(name), str):
            package = params[name].split(":", 1)[0].split(".", 1)[0]
            folder = params.get(extra[CODE_MARK]) if isinstance(extra[CODE_MARK], str) else None
            versions.append(package_version(package, f"{worker} {name} {params[name]!r}", folder))
    return versions


@functools.lru_cache(maxsize=None)
def source_digest(directory: str) -> str:
    """sha256 over the relative paths and contents of every .py file under `directory`.

    Computed once per process: a task process runs one code version.
    """
    root = Path(directory)
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


# --- keys ------------------------------------------------------------------------

def step_key(
    worker: str,
    params: Mapping[str, Any],
    input_keys: Mapping[str, str],
    shard_count: int,
    code_version: str,
    salt: str | None = None,
) -> str:
    """The cache key of a step's output. `salt` (a run key) makes it unique to one run (`cache: false`)."""
    ingredients: dict[str, Any] = {
        "worker": worker,
        "params": dict(params),
        "inputs": dict(input_keys),
        "shard_count": shard_count,
        "code": code_version,
    }
    if salt is not None:
        ingredients["salt"] = salt
    return hashlib.sha256(canonical_json(ingredients).encode()).hexdigest()[:KEY_LENGTH]


def external_input_keys(worker: str, params: Mapping[str, Any], root: str) -> dict[str, str]:
    """Fingerprints of the data a worker reads through its params rather than its step inputs.

    Without them a key would not change when a source file is replaced or another batch
    commits a newer model, and a scheduled batch would reuse yesterday's output forever.
    """
    from workers.registry import get_worker

    fingerprints: dict[str, str] = {}
    for name, field in get_worker(worker).params.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        kind = extra.get(EXTERNAL_INPUT)
        value = params.get(name)
        if kind is None or value is None:
            continue
        if kind == "file":
            fingerprints[f"params.{name}"] = _file_fingerprint(str(value))
        elif kind == "latest":
            fingerprints[f"params.{name}"] = _latest_fingerprint(root, str(value))
    return fingerprints


def _file_fingerprint(uri: str) -> str:
    from workers.artifacts import filesystem

    try:
        fs, path = filesystem(uri)
        return "file:" + fs.ukey(path)  # a hash of size and mtime (local) or ETag (object stores)
    except (FileNotFoundError, ValueError):
        return "file:missing"  # the worker reports the missing file as bad input


def _latest_fingerprint(root: str, ref: str) -> str:
    from workers import artifacts

    dag_id, _, step = ref.rpartition(".")
    try:
        return "latest:" + artifacts.read_json(artifacts.latest_pointer_uri(root, dag_id, step))["uri"]
    except (FileNotFoundError, KeyError, ValueError):
        return "latest:none"


# --- mode ------------------------------------------------------------------------

def cache_mode(conf: Mapping[str, Any] | None, env: Mapping[str, str] | None = None) -> str:
    """'use' (default) or 'refresh': the DAG run conf's "cache" wins over MLBATCH_CACHE."""
    env = os.environ if env is None else env
    if conf and conf.get(CONF_KEY) is not None:
        value, origin = conf[CONF_KEY], f"the run conf's {CONF_KEY!r}"
    else:
        value, origin = env.get(CACHE_ENV, "").strip() or USE, CACHE_ENV
    if not isinstance(value, str) or value.strip().lower() not in MODES:
        raise ValueError(f"{origin} is {value!r}: expected one of {', '.join(map(repr, MODES))}")
    return value.strip().lower()


# --- refresh ---------------------------------------------------------------------

REFRESH_MARKER = "refresh.json"


def refreshed_by(output: str) -> str | None:
    """The run that last refreshed the key at `output`, if any."""
    from workers import artifacts

    try:
        return artifacts.read_json(artifacts.join(output, REFRESH_MARKER)).get("run_id")
    except (FileNotFoundError, ValueError, AttributeError):
        return None


def uncommit(output: str, run_id: str) -> None:
    """Withdraw the commits under `output` so that every shard is recomputed, for a refresh.

    The commits go first (StepOutput.uncommit), and only then the marker that says this run
    has refreshed the key: a retry of the same run then resumes instead of starting over, and
    a crash before the marker leaves the key to be withdrawn again.
    """
    from workers import artifacts
    from workers.step_output import StepOutput

    StepOutput(output).uncommit()
    artifacts.write_json(artifacts.join(output, REFRESH_MARKER), {"run_id": run_id})
