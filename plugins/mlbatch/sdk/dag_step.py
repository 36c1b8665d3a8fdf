"""A `@step` function called inside a DAG: its ResolvedStep, its task, and how its arguments are wired.

Runs at DAG parse time (the Airflow SDK and the spec models; never the function's heavy libraries:
the function is not called here). Every argument becomes JSON in the step's params (so it is part of
the cache key), except a result of another task:
- another `@step`'s result becomes {"$step": NAME} and a need: the worker reads NAME's return value from
  NAME's output (result.json), and XCom carries only NAME's summary;
- a plain task's result is pulled when the step starts (CallStepOperator), then is a param like any other.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow.sdk import XComArg
from airflow.sdk.definitions._internal.contextmanager import DagContext

from mlbatch.sdk.errors import StepDefinitionError
from mlbatch.sdk.operator import XCOM_REF, CallStepOperator
from mlbatch.sdk.reference import import_root
from workers.call_params import SHARD_PARAMETER, STEP_REF

if TYPE_CHECKING:
    from mlbatch.sdk.decorator import StepFunction
    from mlbatch.spec.models import ResolvedStep

PYTHON_CALL = "python.call"
OWN_OPTIONS = ("name", "code")  # the decorator's own; every other option is a spec step field
JSON_FIX = ("pass JSON values (dict with str keys, list, str, finite number, bool, None) or another task's "
            "result; write large data to a file or an object store and pass its URI")


def add_step(function: StepFunction, args: tuple, kwargs: dict[str, Any]) -> XComArg:
    """Add the step to the DAG being defined; its XComArg (the step's summary) goes to later calls."""
    from mlbatch.run.factory import step_task

    dag = DagContext.get_current()
    if dag is None:
        raise StepDefinitionError(f"@step {function.ref} was called outside a DAG. Fix: call it inside `with "
                                  f"DAG(...):` or a @dag function; to run the plain function, call "
                                  f"{function.function.__name__}.function(...)")
    where = f"{dag.fileloc}: @step {function.ref}"
    _check_call(function, args, kwargs, where)
    wiring = _Wiring(where)
    params = {"function": function.ref, "args": [wiring.json(value, f"argument {i + 1}") for i, value in enumerate(args)],
              "kwargs": {name: wiring.json(value, f"argument {name!r}") for name, value in kwargs.items()}}
    step = resolved_step(function, _unique_name(dag, function), params, dag.fileloc)
    task = step_task(dag.dag_id, replace(step, needs=tuple(wiring.needs)), {}, False, operator=CallStepOperator)
    for upstream in wiring.upstream:
        upstream >> task
    return task.output


def resolved_step(function: StepFunction, name: str, params: dict[str, Any], dag_file: str) -> ResolvedStep:
    """The step's effective settings, validated as a spec step's (defaults, units, backends, did-you-mean)."""
    from pydantic import ValidationError

    from mlbatch.backends.traits import backend_info
    from mlbatch.spec.models import BatchSpec
    from mlbatch.spec.problems import problems_from_validation_error

    fields = {key: value for key, value in function.options.items() if key not in OWN_OPTIONS}
    if "needs" in fields or "params" in fields or "run" in fields:
        raise StepDefinitionError(f"{dag_file}: @step {function.ref}: 'run', 'needs' and 'params' are not options. "
                                  "Fix: pass arguments when calling the function; another step's result as an "
                                  "argument makes it a need")
    try:
        step = BatchSpec.model_validate({"steps": {name: {"run": PYTHON_CALL, "params": params, **fields}}}
                                        ).resolved_steps()[name]
    except ValidationError as exc:
        problems = problems_from_validation_error(exc, dag_file, None)
        raise StepDefinitionError("\n".join(f"{p.file}: @step {function.ref}: " + str(p).split(": ", 1)[1]
                                            for p in problems)) from None
    except ValueError as exc:  # MLBATCH_BACKEND names no backend
        raise StepDefinitionError(f"{dag_file}: @step {function.ref}: {exc}") from None
    if not isinstance(step.shards, int):
        raise StepDefinitionError(f"{dag_file}: @step {function.ref}, field 'shards': a @step takes a number of "
                                  "shards. Fix: shards=N (1 to 10000)")
    local = backend_info(step.backend).on_this_machine
    code = function.options.get("code") or (import_root(function.function.__module__) if local else None)
    where = {"code": str(code) if code else None, "image": None if local else step.image}
    return replace(step, params={**step.params, **where})


def _check_call(function: StepFunction, args: tuple, kwargs: dict[str, Any], where: str) -> None:
    """The call must fit the function's signature (its `shard` parameter is the worker's to give)."""
    signature = inspect.signature(function.function)
    if SHARD_PARAMETER in kwargs:
        raise StepDefinitionError(f"{where}: '{SHARD_PARAMETER}' is given by the worker (the shard's index, "
                                  "count and output). Fix: leave it out of the call")
    own = signature.replace(parameters=[p for n, p in signature.parameters.items() if n != SHARD_PARAMETER])
    try:
        own.bind(*args, **kwargs)
    except TypeError as exc:
        raise StepDefinitionError(f"{where}: {exc}. Fix: call it as {function.function.__name__}{own}") from None


def _unique_name(dag: Any, function: StepFunction) -> str:
    """The function's name (or name=), with __1, __2... when the DAG calls it again, as Airflow's @task does."""
    base = function.options.get("name") or function.function.__name__
    name, number = base, 0
    while name in dag.task_dict:
        number += 1
        name = f"{base}__{number}"
    return name


class _Wiring:
    """Turns a call's arguments into JSON, collecting the steps it needs and the plain tasks it waits for."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.needs: list[str] = []
        self.upstream: list[Any] = []

    def json(self, value: Any, what: str) -> Any:
        from mlbatch.run.operator import StepOperator
        from mlbatch.sdk.decorator import StepFunction

        if isinstance(value, XComArg):
            return self._result(value, isinstance(value.operator, StepOperator))
        if isinstance(value, StepFunction):
            raise StepDefinitionError(f"{self.where}, {what}: got the @step function {value.ref} itself. "
                                      f"Fix: pass its result, {value.function.__name__}(...)")
        if value is None or isinstance(value, (str, bool, int)):
            return value
        if isinstance(value, float) and math.isfinite(value):
            return value
        if isinstance(value, (list, tuple)):
            return [self.json(item, what) for item in value]
        if isinstance(value, dict) and all(isinstance(key, str) for key in value):
            return {key: self.json(item, what) for key, item in value.items()}
        raise StepDefinitionError(f"{self.where}, {what}: {type(value).__name__} {_short(value)} is not JSON. "
                                  f"Fix: {JSON_FIX}")

    def _result(self, value: XComArg, of_step: bool) -> dict[str, Any]:
        task_id, key = value.operator.task_id, getattr(value, "key", "return_value")
        if of_step:
            if task_id not in self.needs:
                self.needs.append(task_id)
                self.upstream.append(value.operator)
            return {STEP_REF: task_id}
        if value.operator not in self.upstream:
            self.upstream.append(value.operator)
        return {XCOM_REF: [task_id, key]}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
