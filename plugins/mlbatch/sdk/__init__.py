"""Python DAGs with `@step`: a function in an importable module run as a batch step by the StepOperator.

    from mlbatch.sdk import step

    @step(backend="docker", resources={"memory": "1Gi", "vcpu": 1}, shards=4, retries=2, timeout="30m")
    def train(table: dict, lr: float = 0.1) -> dict: ...

Light to import (the standard library only): a worker imports the function's module, and with it this
package, where no Airflow runs. What builds tasks (mlbatch.sdk.dag_step, the Airflow SDK, the spec models)
loads only when a decorated function is called inside a DAG; `output_of` and `result` load on first use.
"""
from __future__ import annotations

from typing import Any

from mlbatch.sdk.decorator import StepFunction, step
from mlbatch.sdk.errors import StepDefinitionError

__all__ = ["StepDefinitionError", "StepFunction", "output_of", "result", "step"]


def output_of(ref: str) -> Any:
    """The Airflow asset of a batch step's output, 'BATCH.STEP': schedule a DAG on it, or use it as an inlet."""
    from mlbatch.run.assets import step_asset
    from mlbatch.spec.schedules import split_ref

    return step_asset(*split_ref(ref))


def result(summary: dict[str, Any]) -> Any:
    """The return value of a `@step` function, from the summary its task hands a plain `@task` (its XCom)."""
    from workers.python_call import read_result

    return read_result(summary["uri"])
