"""`python.call`: run a Python function named by reference ("module:qualname") as one shard of a step.

The function is imported here, in the worker process or container, never pickled: its module must
be importable where the shard runs (the image, or the `code` folder). Arguments and the return value
are JSON; an argument {"$step": NAME} is the return value of the needed step NAME, read from that
step's output. The return value is written to result.json in the shard's own output folder.

A function that takes a parameter named `shard` gets this shard's Shard (index, count, output), and
reports the step's metrics through it, `shard.metric("auc", 0.83)` (no import: the worker image has no
mlbatch): a gate reads them; a step of several shards gets the mean of each metric every shard reports.
The module may decorate its functions with `mlbatch.sdk.step`: where mlbatch is not installed (the
worker image holds workers/ only), a stand-in `mlbatch.sdk` whose `step` leaves a function as it is
lets the module import.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import json
import math
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Callable

from workers import artifacts
from workers.call_params import SHARD_PARAMETER, STEP_REF
from workers.errors import BadInput
from workers.info import resolve
from workers.request import ShardResult, StepRequest

RESULT = "result"
RESULT_FILE = "result.json"


@dataclass(frozen=True)
class Shard:
    """What a shard of a called function knows of itself; `output` is its own folder (a path or URI)."""

    index: int
    count: int
    output: str
    metrics: dict[str, float] = field(default_factory=dict, repr=False, compare=False)

    def metric(self, name: str, value: float) -> None:
        """Report a metric of this shard (a gate reads the step's: the mean over its shards)."""
        if not isinstance(name, str) or not name:
            raise BadInput(f"shard.metric got the name {name!r}: name a metric with a non-empty string")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise BadInput(f"shard.metric({name!r}, {value!r}): a metric is a finite number (convert it, e.g. "
                           "float(value); report no metric where it is undefined)")
        self.metrics[name] = float(value)


def call(request: StepRequest) -> ShardResult:
    settings = request.settings
    function = load_function(settings.function, settings.code, settings.image)
    args = [_resolved(value, request) for value in settings.args]
    kwargs = {name: _resolved(value, request) for name, value in settings.kwargs.items()}
    shard = Shard(request.shard_index, request.shard_count, artifacts.shard_dir(request.output, request.shard_index))
    if SHARD_PARAMETER in _parameters(function):
        kwargs[SHARD_PARAMETER] = shard
    value = function(*args, **kwargs)
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"{settings.function} returned a value that is not JSON ({exc}): return dicts, lists, "
                       "strings, finite numbers, booleans or None; write large data into shard.output and "
                       "return its URI") from None
    uri = artifacts.write_bytes(request.shard_path(RESULT_FILE), text.encode())
    return ShardResult(outputs={RESULT: uri}, counts={"result_bytes": len(text)}, metrics=dict(shard.metrics))


def load_function(target: str, code: str | None, image: str | None) -> Callable:
    """The function at `target`, imported here; BadInput naming where it was looked for, and the fix."""
    if code and code not in sys.path:
        sys.path.insert(0, code)
    if importlib.util.find_spec("mlbatch") is None:
        _stand_in_sdk()
    try:
        found = resolve(target)
    except (ImportError, AttributeError) as exc:
        where = f"image {image}" if image else "this worker's Python"
        looked = f" (with {code} on sys.path)" if code else ""
        if code and not os.access(code, os.R_OK | os.X_OK):
            # a root Airflow runs local workers as another uid: a 0700 folder hides the module from it
            looked += f", a folder this worker (uid {os.getuid()}) cannot list"
        raise BadInput(f"cannot import function {target} in {where}{looked}: {type(exc).__name__}: {exc}. "
                       "Fix: install the function's package in the image (build it FROM the worker image, "
                       "see examples/worker-package/Dockerfile), or give the step code= a folder the worker "
                       "can read") from None
    function = getattr(found, "__wrapped__", found)  # a @step function: the plain function it wraps
    if not callable(function):
        raise BadInput(f"{target} is a {type(function).__name__}, not a function")
    return function


def _stand_in_sdk() -> None:
    """`mlbatch.sdk` where mlbatch is not installed: `step` leaves a function as it is (nothing to build here)."""
    def step(function: Callable | None = None, **_options: Any) -> Any:
        return function if function is not None else (lambda inner: inner)

    package, sdk = types.ModuleType("mlbatch"), types.ModuleType("mlbatch.sdk")
    sdk.step = step
    package.sdk = sdk
    sys.modules.setdefault("mlbatch", package)
    sys.modules.setdefault("mlbatch.sdk", sdk)


def _parameters(function: Callable) -> set[str]:
    try:
        return set(inspect.signature(function).parameters)
    except (TypeError, ValueError):  # a builtin without a signature takes no shard
        return set()


def _resolved(value: Any, request: StepRequest) -> Any:
    """`value` with every step reference replaced by that step's return value."""
    if isinstance(value, dict):
        if set(value) == {STEP_REF}:
            return step_result(request, str(value[STEP_REF]))
        return {key: _resolved(item, request) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolved(item, request) for item in value]
    return value


def step_result(request: StepRequest, name: str) -> Any:
    """The return value of input step `name`: its one shard's, or the list of every shard's in order."""
    if name not in request.inputs:
        raise BadInput(f"argument refers to step {name!r}, which is not an input of this step "
                       f"(inputs: {', '.join(sorted(request.inputs)) or 'none'})")
    return read_result(request.inputs[name], name)


def read_result(output: str, name: str = "step") -> Any:
    """The return value committed at a python.call step's `output` (the list of its shards' when several)."""
    manifest = artifacts.read_step_manifest(output)
    uris = artifacts.step_output_uris(manifest, RESULT)
    if len(uris) != manifest.get("shard_count"):
        raise BadInput(f"step {name} at {output} has no {RESULT_FILE} in every shard: only a @step function "
                       "(worker python.call) returns a value")
    values = [json.loads(artifacts.read_bytes(uri)) for uri in uris]
    return values[0] if len(values) == 1 else values
