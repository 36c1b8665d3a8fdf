"""A readable summary of a batch run, from Airflow's metadata DB and the steps' XCom summaries."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StepRow:
    step: str
    state: str
    try_number: int
    duration_s: float | None
    summary: dict[str, Any] = field(default_factory=dict)
    failure: dict[str, Any] = field(default_factory=dict)  # a failed step's record: class, shard, peak, fix


@dataclass
class RunReport:
    dag_id: str
    run_id: str
    state: str
    steps: list[StepRow]


def collect(dag_id: str, run_id: str | None = None) -> RunReport:
    """The given run of `dag_id`, or its latest run. Needs AIRFLOW_HOME of the project."""
    from airflow.models import DagRun, TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from mlbatch.run.step_errors import FAILURE_XCOM_KEY

    with create_session() as session:
        query = select(DagRun).where(DagRun.dag_id == dag_id)
        query = query.where(DagRun.run_id == run_id) if run_id else query.order_by(DagRun.id.desc())
        run = session.scalars(query.limit(1)).first()
        if run is None:
            raise LookupError(f"no run of {dag_id!r} found" + (f" with run id {run_id!r}" if run_id else ""))
        summaries = _xcoms(session, dag_id, run.run_id, "return_value")
        failures = _xcoms(session, dag_id, run.run_id, FAILURE_XCOM_KEY)  # a new try clears its task's
        tis = session.scalars(select(TaskInstance).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id).order_by(TaskInstance.start_date))
        rows = [StepRow(ti.task_id, str(ti.state), ti.try_number, ti.duration, summaries.get(ti.task_id) or {},
                        failures.get(ti.task_id) or {}) for ti in tis]
        return RunReport(dag_id, run.run_id, str(run.state), rows)


def _xcoms(session: Any, dag_id: str, run_id: str, key: str) -> dict[str, Any]:
    """Each task's XCom value under `key` in one run."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    query = select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == key)
    return {x.task_id: XComModel.deserialize_value(x) for x in session.scalars(query)}


QUALITY = (("auc", "AUC"), ("logloss", "log loss"), ("rmse", "RMSE"), ("mae", "MAE"))  # model metrics, in order


def _metrics(summary: dict[str, Any]) -> str:
    metrics = summary.get("metrics", {})
    parts = [f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()]
    counts = summary.get("counts", {})
    parts[:0] = [f"{name}={counts[name]}" for name in ("rows", "flagged") if name in counts]
    if _in_sample(summary):
        parts.append("(in-sample: on the scored rows, not held out)")
    return " ".join(parts)


def _out_of_fold(summary: dict[str, Any]) -> bool:
    """Model metrics measured on rows no model saw in training: what model steps report, on every fold
    (`folds`) or on the holdout of one shard (counted as `oof_rows`); only scoring steps are in-sample."""
    metrics = summary.get("metrics", {})
    held_out = "folds" in metrics or "oof_rows" in summary.get("counts", {})
    return held_out and any(name in metrics for name, _ in QUALITY)


def _in_sample(summary: dict[str, Any]) -> bool:
    """Model metrics of a step that is not out of fold (scoring a labelled table: maybe the training rows)."""
    metrics = summary.get("metrics", {})
    return not _out_of_fold(summary) and any(name in metrics for name, _ in QUALITY)


def _quality_lines(report: RunReport) -> list[str]:
    """The model's quality, from out-of-fold metrics only."""
    lines = []
    for row in report.steps:
        metrics = row.summary.get("metrics", {})
        if not _out_of_fold(row.summary):
            continue
        shown = ", ".join(f"{label} {metrics[name]:.4f}" for name, label in QUALITY
                          if isinstance(metrics.get(name), (int, float)))
        rows = row.summary.get("counts", {}).get("oof_rows")
        held_out = f"out of fold over {metrics['folds']} folds" if "folds" in metrics else f"on {rows} held-out rows"
        lines.append(f"  model quality ({row.step}, {held_out}): {shown}")
    return lines


def _usage_lines(report: RunReport) -> list[str]:
    """What each computed step held: budget x time (what AWS bills for), spot or not; hits used nothing."""
    used = [(r.step, r.summary["usage"], r.summary) for r in report.steps
            if r.summary.get("usage") and not r.summary.get("cache_hit")]
    if not used:
        return []
    lines = ["  resources used (budget x run time):"]
    for step, usage, summary in used:
        peak, budget = _mib(summary.get("peak_rss_mib")), _mib(usage.get("memory_mib"))
        capacity = "spot" if usage.get("spot") else "on-demand"
        lines.append(f"    {step:<10} {usage.get('backend', '?'):<6} vcpu-s {usage.get('vcpu_s', 0):>8.1f}  "
                     f"gpu-s {usage.get('gpu_s', 0):>7.1f}  memory {budget} (peak {peak})  {capacity}")
    return lines


def _tracking_lines(report: RunReport) -> list[str]:
    """Where each model step's MLflow run is; a cache hit names the run that computed it."""
    tracked = [(r.step, r.summary["mlflow"]) for r in report.steps if r.summary.get("mlflow")]
    if not tracked:
        return []
    lines = ["  experiment tracking (MLflow):"]
    for step, where in tracked:
        origin = f" (cache hit: computed by {where['computed_by']})" if where["computed_by"] != report.run_id else ""
        lines.append(f"    {step:<10} run {where['run_id']}{origin}  {where['page']}")
    lines.append(f"    open: {tracked[-1][1]['open']}")
    return lines


def _mib(value: float | None) -> str:
    return f"{value:.0f} MiB" if value else "-"


def _failure_text(failure: dict[str, Any]) -> str:
    """A failed step's class and shard, its peak against its budget: `oom at shard 0/1: peak 211 MiB of 150 MiB`."""
    peak, budget = failure.get("peak_rss_mib"), failure.get("memory_mib")
    held = f"peak {_mib(peak)} of {_mib(budget)}" if peak else f"budget {_mib(budget)}"
    return f"{failure.get('failure', 'failed')} at shard {failure.get('shard', '?')}: {held}"


def format_report(report: RunReport) -> str:
    head = f"{report.dag_id}  run {report.run_id}  -> {report.state.upper()}"
    lines = [head, "=" * len(head),
             f"  {'step':<12}{'status':<15}{'try':>4}{'duration':>10}{'peak mem':>11}{'shards':>8}  {'cache':<6} metrics"]
    for row in report.steps:
        s, failure = row.summary, row.failure
        duration = f"{row.duration_s:.1f} s" if row.duration_s is not None else "-"
        peak = _mib(s.get("peak_rss_mib") or failure.get("peak_rss_mib"))
        shards = str(s.get("shard_count") or failure.get("shard", "/-").split("/")[-1])
        cache = "hit" if s.get("cache_hit") else "-"
        lines.append(f"  {row.step:<12}{row.state:<15}{row.try_number:>4}{duration:>10}{peak:>11}{shards:>8}  "
                     f"{cache:<6} {_failure_text(failure) if failure else _metrics(s)}")
        if failure.get("fix"):
            lines.append(f"    fix: shard {failure.get('shard', '?')}: {failure['fix']}")
    lines += _quality_lines(report)
    lines += _usage_lines(report)
    lines += _tracking_lines(report)
    outputs = [(r.step, r.summary["uri"]) for r in report.steps if r.summary.get("uri")]
    if outputs:
        lines.append("  outputs:")
        lines += [f"    {step:<10} {uri}" for step, uri in outputs]
    return "\n".join(lines)
