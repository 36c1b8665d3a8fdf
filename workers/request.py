"""The step request a worker receives, and the result it hands back.

Cheap to import (stdlib only): the Airflow side builds requests at run time and `python -m
workers` parses one before any heavy library is loaded. Pydantic and the worker's params model
are imported only for a worker that takes params (a no-op shard starts without them).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Mapping

from workers import artifacts, wire
from workers.errors import BadInput
from workers.registry import get_worker

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError


@dataclass
class StepRequest:
    worker: str
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)  # upstream step name -> its output URI
    output: str = ""
    shard_index: int = 0
    shard_count: int = 1
    try_number: int = 1
    # the params validated by the worker's pydantic model (defaults filled in)
    settings: BaseModel | SimpleNamespace = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            info = get_worker(self.worker)
        except KeyError as exc:
            raise BadInput(exc.args[0]) from None
        if not info.takes_params and not self.params:
            self.settings, self.params = SimpleNamespace(), {}  # nothing to validate: no pydantic
        else:
            self.settings = _validated(self.worker, info.params, self.params or {})
            self.params = self.settings.model_dump(mode="json")
        if not self.output:
            raise BadInput(f"request for {self.worker} has no output URI")
        if self.shard_count < 1 or not 0 <= self.shard_index < self.shard_count:
            raise BadInput(f"shard {self.shard_index} is outside 0..{self.shard_count - 1}")
        if self.try_number < 1:
            raise BadInput(f"try number must be at least 1, got {self.try_number}")

    # --- (de)serialisation ---------------------------------------------------

    @classmethod
    def from_json(cls, text: str) -> StepRequest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"request is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadInput("request must be a JSON object")
        unknown = sorted(set(data) - set(wire.REQUEST_FIELDS))
        if unknown:
            raise BadInput(f"request has unknown field(s): {', '.join(unknown)}")
        if "worker" not in data:
            raise BadInput("request has no 'worker'")
        return cls(**data)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("settings", None)
        return json.dumps(data, sort_keys=True)

    def with_env(self, env: Mapping[str, str] | None = None) -> StepRequest:
        """Apply the shard and try overrides the backend puts in the environment (see workers.wire).

        The shard index wins; else AWS Batch's array index, mapped through the shard map
        ("3,7-9": array child i runs the i-th shard listed; a long list comes as a file) when
        set, so a re-submitted array can run only the shards that are still missing.
        """
        env = os.environ if env is None else env
        changes: dict[str, int] = {}
        if env.get(wire.SHARD_COUNT):
            changes["shard_count"] = _env_int(env, wire.SHARD_COUNT)
        if env.get(wire.SHARD_INDEX):
            changes["shard_index"] = _env_int(env, wire.SHARD_INDEX)
        elif env.get(wire.ARRAY_INDEX):
            changes["shard_index"] = _map_shard(env, _env_int(env, wire.ARRAY_INDEX))
        if env.get(wire.TRY_NUMBER):
            changes["try_number"] = _env_int(env, wire.TRY_NUMBER)
        return replace(self, **changes) if changes else self

    # --- helpers for workers -------------------------------------------------

    def shard_path(self, name: str) -> str:
        """URI of a data file of this shard."""
        return artifacts.join(artifacts.shard_dir(self.output, self.shard_index), name)

    def input_with(self, key: str) -> dict[str, Any]:
        """The committed manifest of the input step whose shards output `key`."""
        manifests = {name: artifacts.read_step_manifest(uri) for name, uri in self.inputs.items()}
        for manifest in manifests.values():
            if artifacts.step_output_uris(manifest, key):
                return manifest
        got = ", ".join(sorted(manifests)) or "none"
        raise BadInput(f"{self.worker} needs an input step that outputs '{key}'; inputs: {got}")


@dataclass
class ShardResult:
    """What a worker function returns: the runner writes it into the shard manifest."""

    counts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # more top-level entries of the shard manifest (e.g. schema)


def _validated(worker: str, model: type[BaseModel], params: dict[str, Any]) -> BaseModel:
    from pydantic import ValidationError

    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise BadInput(f"params of {worker}: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err["loc"]) or "params"
        parts.append(f"'{where}': {err['msg']}")
    return "; ".join(parts)


def _env_int(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except ValueError:
        raise BadInput(f"environment variable {name}={env[name]!r} is not an integer") from None


def shard_map_of(env: Mapping[str, str]) -> list[int] | None:
    """The shard list of a partial array: inline or, when long, in a file (None: children 0..n-1)."""
    def read_text(uri: str) -> str:
        try:
            return artifacts.read_bytes(uri).decode()
        except FileNotFoundError:
            raise BadInput(f"{wire.SHARD_MAP_URI}={uri} does not exist") from None

    try:
        return wire.shard_map_from(env, read_text)
    except ValueError as error:
        raise BadInput(f"{wire.SHARD_MAP}={error}") from None


def _map_shard(env: Mapping[str, str], array_index: int) -> int:
    shards = shard_map_of(env)
    if shards is None:
        return array_index
    if not 0 <= array_index < len(shards):
        raise BadInput(f"array index {array_index} is outside {wire.SHARD_MAP} of {len(shards)} shards")
    return shards[array_index]
