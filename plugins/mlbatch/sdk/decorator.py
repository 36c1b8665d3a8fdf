"""`@step`: marks a function as a batch step. Standard library only, so a worker imports it cheaply.

The options are a spec step's fields (backend, image, resources, shards, retries, timeout, on_oom, cache,
...), validated by the spec models when the function is first called inside a DAG, plus two of its own:
`name` (the step's name; default the function's) and `code` (a folder put first on the worker's sys.path;
default: on the local backend, the folder the function's module is imported from).
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from mlbatch.sdk.reference import reference


class StepFunction:
    """A decorated function: called inside a DAG it adds a step (a task) and returns its XComArg.

    `.function` is the plain function (call it directly in tests); `.ref` is how a worker imports it.
    """

    def __init__(self, function: Callable, options: dict[str, Any]) -> None:
        self.ref = reference(function)
        self.function = function
        self.options = dict(options)
        functools.update_wrapper(self, function)  # __wrapped__: what a worker unwraps to call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from mlbatch.sdk.dag_step import add_step  # Airflow and the spec models: only inside a DAG

        return add_step(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<@step {self.ref}>"


def step(function: Callable | None = None, /, **options: Any) -> Any:
    """`@step` or `@step(backend=..., resources={...}, shards=..., ...)`: see the module's docstring."""
    if function is not None:
        return StepFunction(function, options)
    return lambda inner: StepFunction(inner, options)
