"""The error of a `@step` function or call that cannot become a step: says the file, the function, the fix."""
from __future__ import annotations


class StepDefinitionError(ValueError):
    """Raised while a DAG file is parsed (or a module decorates): Airflow shows it as that file's import error."""
