"""Metric gates: a step's output is published (latest.json, asset event) only when a metric passes.

    gate: {metric: auc, min: 0.80}                 # fail as bad_input below 0.80
    gate: {metric: drift, min: 0.10, on_fail: skip} # skip this step and those after it below 0.10

The model and its verdict are pure (imported at DAG parse time and by lint); the step
operator enforces them through mlbatch.run.gates.
"""
from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from mlbatch.spec.checks import Issue, SpecValueError, did_you_mean
from workers.registry import WORKERS


class Gate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    min: float | None = None  # passes when metric >= min
    max: float | None = None  # passes when metric <= max
    on_fail: Literal["fail", "skip"] = "fail"  # fail: bad_input and one alert; skip: no alert, downstream skipped

    @model_validator(mode="after")
    def _has_a_bound(self) -> Gate:
        if self.min is None and self.max is None:
            raise SpecValueError("a gate needs a threshold", f"add min or max, e.g. gate: {{metric: {self.metric}, min: 0.8}}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise SpecValueError(f"gate min {self.min:g} is above its max {self.max:g}", "swap them")
        return self

    @property
    def rule(self) -> str:
        """'auc >= 0.8', 'drift <= 0.25', '0.1 <= drift <= 0.3'."""
        if self.min is not None and self.max is not None:
            return f"{self.min:g} <= {self.metric} <= {self.max:g}"
        return f"{self.metric} >= {self.min:g}" if self.min is not None else f"{self.metric} <= {self.max:g}"

    def verdict(self, metrics: dict[str, Any]) -> str | None:
        """None when the metrics pass; else why not, naming the metric, its value and the threshold."""
        if self.metric not in metrics:
            return (f"metric {self.metric!r} was not reported (reported: {', '.join(sorted(metrics)) or 'none'}); "
                    f"gate {self.rule}")
        value = metrics[self.metric]
        if value is None:
            return f"metric {self.metric} is undefined (null, e.g. an AUC on rows of one class); gate {self.rule}"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"metric {self.metric} is {value!r}, not a number; gate {self.rule}"
        if self.min is not None and value < self.min:
            return f"{self.metric} {value:.4g} is below the minimum {self.min:g}"
        if self.max is not None and value > self.max:
            return f"{self.metric} {value:.4g} is above the maximum {self.max:g}"
        return None


def gate_issues(data: Any) -> list[Issue]:
    """Gates that could never pass: on a sharded step, or on a metric the worker does not report
    (for the task of the step's table, where the spec tells it). A command step and a worker whose code
    names its own metrics (python.call) may gate any metric, on any number of shards (their mean)."""
    from mlbatch.spec.tasks import step_tasks

    steps = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(steps, dict) or not any(isinstance(s, dict) and isinstance(s.get("gate"), dict)
                                              for s in steps.values()):
        return []  # no gate: no need to walk the step graph for tasks (every DAG parse runs this)
    tasks = step_tasks(steps)
    issues = []
    for name, step in steps.items():
        gate = step.get("gate") if isinstance(step, dict) else None
        if not isinstance(gate, dict):
            continue
        run, metric = step.get("run"), gate.get("metric")
        worker = WORKERS.get(run) if isinstance(run, str) else None
        own = "command" in step or (worker is not None and worker.own_metrics)  # metrics its code names
        if step.get("shards", 1) != 1 and not own:  # a command or python.call step's metrics: its shards' mean
            issues.append(Issue(("steps", name, "gate"), "a gate reads the step's metrics, which only a step of one "
                                "shard reports", "gate the step that combines the shards (e.g. the ensemble)"))
        if own:
            continue  # lint cannot know the names; a metric not reported fails the gate when the step runs
        task = next(iter(tasks.get(name, ())), None) if len(tasks.get(name, ())) == 1 else None
        reported = worker.reported(task) if worker is not None else ()
        if worker is None or not isinstance(metric, str) or metric in reported:
            continue
        if reported:
            on = f" on a {task} table" if task else ""
            issues.append(Issue(("steps", name, "gate", "metric"), f"worker {worker.name!r} reports no metric {metric!r}{on}",
                                did_you_mean(metric, reported, f"the metrics of {worker.name!r}{on}")))
        else:
            issues.append(Issue(("steps", name, "gate"), f"worker {worker.name!r} reports no metrics a gate could read",
                                "remove the gate, or gate a step whose worker reports metrics (python -m workers list)"))
    return issues
