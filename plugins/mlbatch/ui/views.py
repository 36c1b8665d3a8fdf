"""What the page shows of a run and its steps, assembled from the records (pure: no DB, no I/O)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlbatch.settings import PriceSettings
from mlbatch.ui.advice import StepUse, advice
from mlbatch.ui.pricing import Cost, run_cost, step_cost


@dataclass
class StepView:
    name: str
    state: str
    try_number: int
    duration_s: float | None
    shards: int | None
    shards_run: int | None
    cache_hit: bool | None
    peak_mib: float | None
    budget_mib: int | None
    vcpu_s: float | None
    gpu_s: float | None
    cost: Cost | None
    metrics: dict[str, Any]
    gate: str | None  # the rule, e.g. 'auc >= 0.8'
    verdict: str | None  # 'passed', or why not
    output: str | None
    mlflow_page: str | None


@dataclass
class RunView:
    dag_id: str
    run_id: str
    state: str
    trigger: str
    duration_s: float | None
    steps: list[StepView] = field(default_factory=list)

    @property
    def cost_usd(self) -> float:
        return run_cost([step.cost for step in self.steps])

    def metric(self, step: str, name: str) -> float | None:
        value = next((s.metrics.get(name) for s in self.steps if s.name == step), None)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def run_view(dag_id: str, record: dict[str, Any], steps: dict[str, Any], prices: PriceSettings) -> RunView:
    start, end = record.get("start"), record.get("end")
    duration = (end - start).total_seconds() if start and end else None
    return RunView(dag_id, record["run_id"], record["state"], record["trigger"], duration,
                   [step_view(task, steps.get(task["task_id"]), prices) for task in record["tasks"]])


def step_view(task: dict[str, Any], step: Any, prices: PriceSettings) -> StepView:
    summary = task["summary"]
    usage = summary.get("usage") or {}
    gate = getattr(step, "gate", None)
    metrics = summary.get("metrics") or {}
    return StepView(
        name=task["task_id"], state=task["state"], try_number=task["try_number"], duration_s=task["duration_s"],
        shards=summary.get("shard_count"), shards_run=len(summary["shards_run"]) if "shards_run" in summary else None,
        cache_hit=summary.get("cache_hit"), peak_mib=summary.get("peak_rss_mib") if usage else None,
        budget_mib=usage.get("memory_mib") or getattr(step, "memory_mib", None),
        vcpu_s=usage.get("vcpu_s"), gpu_s=usage.get("gpu_s"),
        cost=None if summary.get("cache_hit") else step_cost(usage, getattr(step, "vcpu", 1.0), prices),
        metrics=metrics, gate=gate.rule if gate else None, verdict=_verdict(gate, task["state"], metrics),
        output=summary.get("uri"), mlflow_page=(summary.get("mlflow") or {}).get("page"))


def _verdict(gate: Any, state: str, metrics: dict[str, Any]) -> str | None:
    if gate is None:
        return None
    if metrics:
        return gate.verdict(metrics) or "passed"
    return "not passed" if state in ("failed", "upstream_failed", "skipped") else None


def step_advice(runs: list[RunView], steps: dict[str, Any]) -> dict[str, str]:
    """step name -> right-sizing advice from the computed tries of these runs."""
    found = {}
    for name, step in steps.items():
        uses = [StepUse(s.peak_mib, s.budget_mib or step.memory_mib) for run in runs for s in run.steps
                if s.name == name and s.peak_mib and not s.cache_hit]
        if text := advice(uses, step.memory_mib):
            found[name] = text
    return found


def gated_metric(steps: dict[str, Any]) -> tuple[str, str] | None:
    """(step, metric) of the batch's first gate: the metric the chart follows."""
    return next(((name, step.gate.metric) for name, step in steps.items() if step.gate), None)
