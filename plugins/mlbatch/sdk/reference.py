"""How a function travels to its worker: by reference, "module:qualname", imported there again.

Checked when the function is decorated: a lambda, a function defined inside another, or one in a module
that cannot be imported by its name (a script run as __main__, a DAG file, which Airflow loads under a
private name) cannot be found by a worker, so each is refused with the fix. Standard library only.
"""
from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Callable

from mlbatch.sdk.errors import StepDefinitionError

MOVE_IT = ("move it to the top level of a module of its own that the DAG file imports (e.g. dags/my_steps.py "
           "beside the DAG, or a module of your package)")


def reference(function: Callable) -> str:
    """'module:qualname' of `function`; StepDefinitionError when a worker could not import it by that name."""
    where = _where(function)
    name = getattr(function, "__qualname__", None) or getattr(function, "__name__", "?")
    if not inspect.isfunction(function):
        raise StepDefinitionError(f"{where}: @step decorates a function, not a {type(function).__name__} ({name})")
    if function.__name__ == "<lambda>":
        raise StepDefinitionError(f"{where}: @step cannot run a lambda: its worker imports the function by "
                                  f"name. Fix: write it as a def and {MOVE_IT}")
    if "<locals>" in name:
        raise StepDefinitionError(f"{where}: @step function {name} is defined inside another function, where "
                                  f"its worker cannot import it. Fix: {MOVE_IT}")
    module = function.__module__
    if module == "__main__" or not importable(module):
        raise StepDefinitionError(f"{where}: @step function {name} is defined in {_shown(module)}, which a "
                                  f"worker cannot import by its module name. Fix: {MOVE_IT}")
    return f"{module}:{name}"


def importable(module: str) -> bool:
    """Whether an import finds `module`'s top-level package by its name (sys.path, editable installs), not
    merely in sys.modules, where Airflow registers a DAG file under a name no worker can import."""
    top = module.split(".", 1)[0]
    return any(getattr(finder, "find_spec", None) and finder.find_spec(top, None) is not None
               for finder in sys.meta_path)


def import_root(module: str) -> str | None:
    """The sys.path folder `module` is imported from (what a local worker puts on its path); None if unknown."""
    loaded = sys.modules.get(module)
    file = getattr(loaded, "__file__", None)
    if not file:
        return None
    path = Path(file).resolve()
    depth = module.count(".") + (1 if path.name == "__init__.py" else 0)
    return str(path.parents[depth])


def _where(function: Callable) -> str:
    code = getattr(function, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else repr(function)


def _shown(module: str) -> str:
    return "a script run as __main__" if module == "__main__" else f"module {module!r} (a DAG file, or not on sys.path)"
