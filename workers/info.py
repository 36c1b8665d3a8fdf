"""What a worker is: a WorkerInfo names its function and its params model by "module:name".

Stdlib only: a WorkerInfo costs nothing to declare. Its params model is imported on first
use (lint, the loaders, a shard's request) and its function only when a shard runs it, so a
catalogue of many workers, the project's or a team's own package, stays cheap to read.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    from pydantic import BaseModel

NO_PARAMS = "workers.params_base:NoParams"  # the model of a worker that takes no params


def resolve(target: str) -> Any:
    """The object at "module:name" (a dotted name after the colon reaches an attribute's attribute)."""
    module_name, _, attribute = target.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


class _ParamsModel:
    """The `params` field: given as a model class or "module:Class", read as the class.

    A descriptor-typed dataclass field: WorkerInfo("x", "m:f", "pkg.params:XParams", ...) keeps
    the string and imports the model (and pydantic) the first time someone reads `info.params`.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, info: Any, owner: type | None = None) -> Any:
        if info is None:
            raise AttributeError(self.slot)  # no class-level default: the field is required
        given = info.__dict__[self.slot]
        if isinstance(given, str):
            given = resolve(given)
            info.__dict__[self.slot] = given
        return given

    def __set__(self, info: Any, value: Any) -> None:
        info.__dict__["_takes_params"] = value is not None
        info.__dict__[self.slot] = NO_PARAMS if value is None else value


@dataclass(frozen=True, eq=False)
class WorkerInfo:
    name: str
    target: str  # "module:function", imported only when the worker runs
    params: type[BaseModel] | str | None = _ParamsModel()  # the model, "module:Model", or None: takes no params
    summary: str = ""
    metrics: tuple[str, ...] = ()  # the step metrics it reports whatever the task: what a gate may read
    tracked: bool = False  # its committed steps are logged as MLflow runs (models, not checks or embeddings)
    # a model worker: the tasks it handles and the metrics it reports for each (checked by lint)
    task_metrics: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # a data worker: the task of the table it writes, fixed or read from this param
    makes_task: str | None = None
    task_param: str | None = None
    # "module:function" of the step's own metrics, computed from every shard manifest at commit
    step_metrics: str | None = None
    # its metrics are named by the code it runs (python.call): lint cannot list them, a gate may read any
    own_metrics: bool = False

    @property
    def takes_params(self) -> bool:
        """False for a worker declared with no params model: its requests need no pydantic at all."""
        return self.__dict__["_takes_params"]

    @property
    def package(self) -> str:
        """The top-level package (or module) its function lives in: what its code version covers."""
        return self.target.split(":", 1)[0].split(".", 1)[0]

    def reported(self, task: str | None = None) -> tuple[str, ...]:
        """The metrics a step of this worker reports on a table of `task` (None: of any task)."""
        by_task = [self.task_metrics.get(task, ())] if task else list(self.task_metrics.values())
        return tuple(dict.fromkeys([*(m for ms in by_task for m in ms), *self.metrics]))

    def table_task(self, params: Mapping[str, Any] | None) -> str | None:
        """The task of the table a data worker writes with these params; None for other workers."""
        if self.task_param is None:
            return self.makes_task
        given = (params or {}).get(self.task_param)
        return given if isinstance(given, str) else self.params.model_fields[self.task_param].default

    def load(self) -> Callable:
        return resolve(self.target)

    def combined_metrics(self, shards: list[dict[str, Any]]) -> dict[str, Any]:
        """The step's metrics from its shards' manifests (see step_metrics); none without a combiner."""
        return resolve(self.step_metrics)(shards) if self.step_metrics else {}
