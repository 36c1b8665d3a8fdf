"""The batch spec (one dags/specs/*.yaml file) as typed models, and each step's effective settings.

Imported at DAG parse time: pydantic, croniter and the worker catalogue only, never Airflow.
Validation errors come out as pydantic errors of one custom type whose context holds a `fix`,
with clean locations (("steps", "train", "needs"), ...), so every caller gets readable messages.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from mlbatch.spec.checks import Issue, cross_field_issues, did_you_mean
from mlbatch.spec.commands import command_backend_problems, step_backend
from mlbatch.spec.fields import (  # noqa: F401  (BACKENDS, DAG_ID_* are part of this module's interface)
    BACKEND_ENV, BACKENDS, DAG_ID_CHARS, DAG_ID_PATTERN, MAX_SHARDS, Backend,
    Capacity, DagId, Duration, MemoryMiB, QueueRole, Retries, Schedule, ShardCount, ShardsOf, StepName, StepNetwork,
)
from mlbatch.spec.gates import Gate, gate_issues
from mlbatch.spec.schedules import SCHEDULE_TAGS, AfterSchedule, BatchSchedule
from mlbatch.spec.tasks import task_issues
from mlbatch.spec.units import parse_memory
from workers.registry import WORKERS

ERROR_TYPE = "mlbatch_spec"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Resources(_Model):
    vcpu: float = Field(1.0, gt=0)
    memory: MemoryMiB = parse_memory("2Gi")
    gpu: int = Field(0, ge=0)


class ShardsSpec(_Model):
    """Shards sized at run time: ceil(count / per), at most `max`."""

    per: int = Field(gt=0)
    of: ShardsOf
    max: int = Field(100, ge=1, le=MAX_SHARDS)


Shards = Annotated[
    Union[Annotated[ShardCount, Tag("count")], Annotated[ShardsSpec, Tag("from")]],
    Discriminator(lambda value: "from" if isinstance(value, (dict, ShardsSpec)) else "count"),
]
_SHARDS_TAGS = {"count", "from"}


class OnOom(_Model):
    """Retry an out-of-memory step with its memory budget multiplied by `grow`, up to `max`."""

    grow: float = Field(2.0, gt=1)
    max: MemoryMiB


class StepDefaults(_Model):
    backend: Backend = "local"
    image: str = "mlbatch-worker:cpu"
    resources: Resources = Resources()
    retries: Retries = 2
    retry_delay: Duration = timedelta(minutes=1)
    retry_backoff: bool = False  # exponential backoff between retries
    max_retry_delay: Duration | None = None
    timeout: Duration = timedelta(minutes=30)
    start_timeout: Duration = timedelta(minutes=30)  # fail as infrastructure if no worker started by then
    on_oom: OnOom | None = None
    cache: bool = True
    cache_version: str | None = None  # replaces the code version in cache keys
    queue: QueueRole | None = None  # container backends: job queue by role; None: gpu for GPU steps, else cpu
    deferrable: bool | None = None  # container backends: wait in the triggerer; None: the settings decide
    capacity: Capacity = "on-demand"  # ECS: Fargate or Fargate Spot
    network: StepNetwork | None = None  # docker: none or host; None: the settings' [docker] network (none)


class StepSpec(_Model):
    """One step; settings left out (None) come from `defaults`.

    A step runs a worker (`run:`) or a command (`command:`, an argv list): in a container of its
    `image:` on a container backend (docs/image-steps.md), as a local process without one.
    """

    run: str | None = None
    command: list[str] | None = Field(None, min_length=1)
    needs: list[str] = []
    params: dict[str, Any] = {}  # a worker's typed params; free-form JSON for a command
    gate: Gate | None = None  # publish the output only when a metric passes (mlbatch.spec.gates)
    shards: Shards = 1
    backend: Backend | None = None
    image: str | None = None
    resources: Resources | None = None  # only the fields written here override the defaults
    retries: Retries | None = None
    retry_delay: Duration | None = None
    retry_backoff: bool | None = None
    max_retry_delay: Duration | None = None
    timeout: Duration | None = None
    start_timeout: Duration | None = None
    on_oom: OnOom | None = None
    cache: bool | None = None
    cache_version: str | None = None
    queue: QueueRole | None = None
    deferrable: bool | None = None
    capacity: Capacity | None = None
    network: StepNetwork | None = None


AlertEvent = Literal["failure", "retry", "success"]


class Alerts(_Model):
    slack: str | None = None  # Airflow connection id of a Slack webhook
    on: list[AlertEvent] = ["failure"]  # failure: once per step that finally fails; success: a run digest

    @model_validator(mode="before")
    @classmethod
    def _yaml_on_key(cls, data: Any) -> Any:
        # YAML 1.1 (PyYAML's safe_load) reads the bare key `on:` as the boolean True.
        if isinstance(data, dict) and True in data:
            data = {("on" if key is True else key): value for key, value in data.items()}
        return data


@dataclass(frozen=True)
class ShardsFrom:
    """Shard count known at run time: ceil(upstream `step`'s count `count` / per), capped at `max`."""

    per: int
    step: str
    count: str
    max: int = 100


@dataclass(frozen=True)
class ResolvedStep:
    """A step's effective settings: defaults merged with its own, params validated with defaults filled."""

    name: str
    run: str | None  # None: a command step
    needs: tuple[str, ...]
    params: dict[str, Any]
    backend: str
    image: str
    vcpu: float
    memory_mib: int
    gpu: int
    retries: int
    retry_delay: timedelta
    timeout: timedelta
    shards: int | ShardsFrom
    retry_backoff: bool = False
    gate: Gate | None = None
    max_retry_delay: timedelta | None = None
    start_timeout: timedelta = timedelta(minutes=30)
    oom_grow: float | None = None  # from on_oom: multiply memory by this on an OOM retry ...
    oom_max_mib: int | None = None  # ... up to this
    cache: bool = True
    cache_version: str | None = None
    queue: str | None = None  # queue role for container backends
    deferrable: bool | None = None
    capacity: str = "on-demand"  # ECS capacity: on-demand or spot
    network: str | None = None  # a step container's network (none, host); None: the backend's setting
    command: tuple[str, ...] | None = None  # a command step's argv ({params.NAME} still in it)

    @property
    def runs(self) -> str:
        """What the step runs, for people: its worker, or its command (in its image on a container backend)."""
        return self.run if self.run is not None else " ".join(self.command or ())


class BatchSpec(_Model):
    dag_id: DagId | None = None  # the loader fills in the file stem
    description: str | None = None
    schedule: BatchSchedule = None  # cron, preset, null, or {after: [BATCH.STEP, ...], cron: ...}
    start_date: date = date(2026, 1, 1)
    catchup: bool = False
    max_active_runs: int = Field(1, ge=1)
    owner: str = "mlbatch"
    tags: list[str] = []
    alerts: Alerts = Alerts()
    defaults: StepDefaults = StepDefaults()
    steps: dict[StepName, StepSpec] = Field(min_length=1)

    @model_validator(mode="wrap")
    @classmethod
    def _all_problems_at_once(cls, data: Any, handler: Any) -> BatchSpec:
        # Field errors and cross-field issues are raised together, so a user fixes them in one go.
        issues = cross_field_issues(data) + gate_issues(data) + task_issues(data)
        try:
            spec = handler(data)
        except ValidationError as exc:
            issues = [_friendly(error) for error in exc.errors()] + issues
            spec = None
        if issues:
            raise ValidationError.from_exception_data(cls.__name__, [_as_error(issue) for issue in issues])
        return spec

    def step_order(self) -> list[str]:
        """Step names in topological order (needs first), otherwise in the order written."""
        order: list[str] = []

        def visit(name: str) -> None:
            if name not in order:
                for need in self.steps[name].needs:
                    visit(need)
                order.append(name)

        for name in self.steps:
            visit(name)
        return order

    def resolved_steps(self) -> dict[str, ResolvedStep]:
        """Effective settings of every step, in topological order."""
        default_backend = effective_default_backend(self.defaults)
        return {name: _resolve(name, self.steps[name], self.defaults, default_backend)
                for name in self.step_order()}


def effective_default_backend(defaults: StepDefaults) -> str:
    """The default backend: MLBATCH_BACKEND when set (to run a spec elsewhere unchanged), else the spec's."""
    override = os.environ.get(BACKEND_ENV, "").strip()
    if not override:
        return defaults.backend
    if override not in BACKENDS:
        raise ValueError(f"{BACKEND_ENV}={override!r} is not a backend; use one of {', '.join(BACKENDS)}")
    return override


def _resolve(name: str, step: StepSpec, defaults: StepDefaults, default_backend: str) -> ResolvedStep:
    resources = step_resources(step, defaults)
    on_oom = _pick(step.on_oom, defaults.on_oom)
    shards = step.shards
    if isinstance(shards, ShardsSpec):
        source, count = shards.of.split(".", 1)
        shards = ShardsFrom(per=shards.per, step=source, count=count, max=shards.max)
    return ResolvedStep(
        name=name,
        run=step.run,
        needs=tuple(step.needs),
        params=step_params(step),
        backend=step_backend(step, defaults, default_backend),
        image=step.image or defaults.image,
        vcpu=float(resources.vcpu),
        memory_mib=resources.memory,
        gpu=resources.gpu,
        retries=defaults.retries if step.retries is None else step.retries,
        retry_delay=step.retry_delay or defaults.retry_delay,
        timeout=step.timeout or defaults.timeout,
        shards=shards,
        retry_backoff=_pick(step.retry_backoff, defaults.retry_backoff),
        gate=step.gate,
        max_retry_delay=_pick(step.max_retry_delay, defaults.max_retry_delay),
        start_timeout=_pick(step.start_timeout, defaults.start_timeout),
        oom_grow=on_oom.grow if on_oom else None,
        oom_max_mib=on_oom.max if on_oom else None,
        cache=_pick(step.cache, defaults.cache),
        cache_version=_pick(step.cache_version, defaults.cache_version),
        queue=_pick(step.queue, defaults.queue),
        deferrable=_pick(step.deferrable, defaults.deferrable),
        capacity=_pick(step.capacity, defaults.capacity),
        network=_pick(step.network, defaults.network),
        command=tuple(step.command) if step.command is not None else None,
    )


def step_params(step: StepSpec) -> dict[str, Any]:
    """A worker's params validated with its defaults filled; a command's as written (free-form JSON)."""
    if step.run is None:
        return dict(step.params)
    return WORKERS[step.run].params.model_validate(step.params).model_dump(mode="json")


def _pick(own: Any, default: Any) -> Any:
    return default if own is None else own


def availability_problems(spec: BatchSpec) -> list[Issue]:
    """Problems only known with the environment: MLBATCH_BACKEND, and what each backend cannot run."""
    try:
        default_backend = effective_default_backend(spec.defaults)
    except ValueError as exc:
        hint = did_you_mean(os.environ.get(BACKEND_ENV, "").strip(), BACKENDS) or ""
        unset = f"set {BACKEND_ENV} to one of {', '.join(BACKENDS)}, or unset it"
        return [Issue((), str(exc), hint if hint.startswith("did you mean") else unset)]
    return container_problems(spec, default_backend)


def container_problems(spec: BatchSpec, default_backend: str) -> list[Issue]:
    """What a step's backend would reject or misplace: GPU steps on CPU queues, then each backend's own checks."""
    from mlbatch.backends.traits import backend_info

    issues = []
    for name, step in spec.steps.items():
        gpu = step_resources(step, spec.defaults).gpu
        queue = _pick(step.queue, spec.defaults.queue)
        if gpu and queue is not None and not queue.startswith("gpu"):
            where = ("steps", name, "queue") if step.queue else ("defaults", "queue")
            issues.append(Issue(where, f"step '{name}' asks for {gpu} GPU but queue {queue!r} has none",
                                "use queue: gpu or queue: gpu-spot (or leave queue out: GPU steps pick gpu)"))
        issues += command_backend_problems(name, step, spec.defaults, default_backend)
        checks = backend_info(step.backend or default_backend).load_spec_checks()
        if checks is not None:
            issues += checks(name, step, spec.defaults)
    return issues


def step_resources(step: StepSpec, defaults: StepDefaults) -> Resources:
    """The step's resources: the defaults with the fields the step writes itself."""
    if step.resources is None:
        return defaults.resources
    return defaults.resources.model_copy(update=step.resources.model_dump(include=step.resources.model_fields_set))


def setting_at(name: str, step: StepSpec, field: str) -> tuple[str, ...]:
    """Where a setting comes from: the step's own field, or the defaults'."""
    return ("steps", name, field) if getattr(step, field) is not None else ("defaults", field)


# Where each kind of mapping sits in a spec ("*" is any step name): for 'did you mean' on unknown fields.
_MODEL_AT = {
    (): BatchSpec, ("alerts",): Alerts, ("defaults",): StepDefaults, ("defaults", "resources"): Resources,
    ("steps", "*"): StepSpec, ("steps", "*", "resources"): Resources, ("steps", "*", "shards"): ShardsSpec,
    ("defaults", "on_oom"): OnOom, ("steps", "*", "on_oom"): OnOom,
    ("schedule",): AfterSchedule, ("steps", "*", "gate"): Gate,
}


def _friendly(error: dict) -> Issue:
    """A pydantic error as an Issue: clean location, plain message, a fix where one is known."""
    loc = tuple(error["loc"])
    if loc[:1] == ("steps",) and len(loc) > 3 and loc[2] == "shards" and loc[3] in _SHARDS_TAGS:
        loc = loc[:3] + loc[4:]  # the discriminated union adds its tag to the path
    if loc[:1] == ("schedule",) and len(loc) > 1 and loc[1] in SCHEDULE_TAGS:
        loc = loc[:1] + loc[2:]
    if loc[-1:] == ("[key]",):
        loc = loc[:-1]
    kind, value = error["type"], error.get("input")
    if kind == ERROR_TYPE:
        return Issue(loc, error["msg"], error["ctx"].get("fix"))
    if kind == "extra_forbidden":
        shape = tuple("*" if (i == 1 and loc[0] == "steps") else part for i, part in enumerate(loc[:-1]))
        model = _MODEL_AT.get(shape)
        return Issue(loc, "unknown field", did_you_mean(str(loc[-1]), model.model_fields if model else [], "the fields"))
    if kind == "missing":
        return Issue(loc, "required field is missing", f"add '{loc[-1]}'")
    if kind == "value_error":
        cause = error["ctx"]["error"]
        return Issue(loc, str(cause), getattr(cause, "fix", None))
    if kind == "too_short" and loc == ("steps",):
        return Issue(loc, "a batch needs at least one step", "add a step, e.g. steps: {hello: {run: check.noop}}")
    if kind == "list_type":
        example = f"write it as a list, e.g. [{value}]" if isinstance(value, str) else "write it as a list: [...]"
        return Issue(loc, f"should be a list, got {_short(value)}", example)
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return Issue(loc, f"should be a mapping of fields (key: value), got {_short(value)}")
    return Issue(loc, f"{error['msg']} (got {_short(value)})")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _as_error(issue: Issue) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError(ERROR_TYPE, "{message}", {"message": issue.message, "fix": issue.fix}),
        loc=issue.loc,
        input=None,
    )
