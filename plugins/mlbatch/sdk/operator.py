"""The task of a `@step` function: the StepOperator, with the results of plain tasks filled in first.

A plain task's result is only known when the step starts: it is pulled from XCom here, checked to be
JSON, and becomes part of the step's params (so of its cache key) before the StepOperator runs as for
any step: cache, shards, failure classes, OOM growth, reattach.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from mlbatch.run.operator import StepOperator

XCOM_REF = "$xcom"  # {"$xcom": [TASK_ID, KEY]}: a plain task's result, pulled when the step starts


class CallStepOperator(StepOperator):
    """Runs a `@step` function (worker python.call) as a batch step."""

    def execute(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        params = _filled(self.step.params, lambda task_id, key: ti.xcom_pull(task_ids=task_id, key=key))
        try:
            json.dumps(params, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise AirflowFailException(f"step {self.step.name}: an argument from a plain task is not JSON ({exc}): "
                                       "return JSON from that task, or a URI of the data") from None
        self.step = replace(self.step, params=params)
        return super().execute(context)


def _filled(value: Any, pull: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {XCOM_REF}:
            task_id, key = value[XCOM_REF]
            return pull(task_id, key)
        return {key: _filled(item, pull) for key, item in value.items()}
    if isinstance(value, list):
        return [_filled(item, pull) for item in value]
    return value
