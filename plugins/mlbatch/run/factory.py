"""Spec -> Airflow DAG. The only place that builds DAG objects.

Imported at DAG parse time: keep it to pydantic, yaml and the Airflow SDK. The dag-processor
imports it again for every parse of every loader (docs/benchmarks.md, "DAG parse time"), so
what only some batches need (alerts, the missing-spec error) is imported where it is used.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow.sdk import DAG

from mlbatch.backends.traits import LOCAL_POOL, backend_info
from mlbatch.run.assets import dag_schedule, step_asset
from mlbatch.run.operator import StepOperator
from mlbatch.spec.loader import load_spec
from mlbatch.spec.models import ResolvedStep

__all__ = ["LOCAL_POOL", "build_dag", "step_task"]
# Airflow's own timeout is a backstop: the backend enforces the step timeout itself
# and classifies it, so give it time to kill the workers and report first.
TIMEOUT_GRACE = timedelta(seconds=60)


def build_dag(loader_file: str, spec_relpath: str) -> DAG:
    """Build the DAG of one spec; `spec_relpath` is relative to the loader file's folder."""
    spec_path = Path(loader_file).resolve().parent / spec_relpath
    if not spec_path.is_file():  # the import error then names this loader and the fix, not a bare read error
        from mlbatch.spec.orphans import MissingSpecError

        raise MissingSpecError(Path(loader_file), spec_relpath)
    spec = load_spec(spec_path)
    steps = spec.resolved_steps()
    start = datetime.combine(spec.start_date, datetime.min.time(), tzinfo=timezone.utc)
    alerts = _alerts(spec)
    with DAG(
        dag_id=spec.dag_id,
        description=spec.description,
        doc_md=_doc(spec, spec_path),
        schedule=dag_schedule(spec.schedule),
        start_date=start,
        catchup=spec.catchup,
        max_active_runs=spec.max_active_runs,
        tags=sorted({"mlbatch", *spec.tags}),
        default_args={"owner": spec.owner},
        **(alerts.dag_callbacks() if alerts else {}),
    ) as dag:
        callbacks = alerts.callbacks() if alerts else {}
        digest = alerts is not None and "success" in alerts.events
        tasks = {name: step_task(spec.dag_id, step, callbacks, digest) for name, step in steps.items()}
        for name, step in steps.items():
            for upstream in step.needs:
                tasks[upstream] >> tasks[name]
    return dag


def _alerts(spec):
    if not spec.alerts.slack:
        return None
    from mlbatch.alerts.slack import SlackAlerts

    return SlackAlerts(spec.alerts.slack, spec.alerts.on)


def step_task(dag_id: str, step: ResolvedStep, callbacks: dict, record_run: bool,
              operator: type[StepOperator] = StepOperator) -> StepOperator:
    """The task of one step (a spec's, or a Python DAG's `@step` function with its own operator class)."""
    backoff = {"retry_exponential_backoff": 2.0} if step.retry_backoff else {}  # delay doubles per try
    if step.max_retry_delay is not None:
        backoff["max_retry_delay"] = step.max_retry_delay
    return operator(
        task_id=step.name,
        batch_id=dag_id,
        step=step,
        record_run=record_run,
        retries=step.retries,
        retry_delay=step.retry_delay,
        **backoff,
        **callbacks,
        execution_timeout=step.timeout + TIMEOUT_GRACE,
        outlets=[step_asset(dag_id, step.name)],  # an event when its latest.json moves (mlbatch.run.assets)
        # The exact per-process vcpu admission of a local step happens in the local backend
        # (shard counts are only known at run time); its pool only keeps the queue short.
        pool=backend_info(step.backend).pool or "default_pool",
        doc_md=f"Runs `{step.runs}` ({step.vcpu:g} vcpu, {step.memory_mib} MiB, backend {step.backend})."
               + (f" Published only when `{step.gate.rule}`." if step.gate else ""),
    )


def _doc(spec, spec_path: Path) -> str:
    lines = [spec.description or f"Batch {spec.dag_id}", "", f"Spec: `{spec_path.name}`", ""]
    if after := getattr(spec.schedule, "after", None):
        cron = f", and on `{spec.schedule.cron}`" if spec.schedule.cron else ""
        lines += [f"Runs when {', '.join(f'`{ref}`' for ref in after)} committed a new output{cron}.", ""]
    lines += ["| step | worker | needs | shards |", "|---|---|---|---|"]
    for name, step in spec.resolved_steps().items():
        shards = step.shards if isinstance(step.shards, int) else f"per {step.shards.per} of {step.shards.step}.{step.shards.count}"
        lines.append(f"| {name} | `{step.runs}` | {', '.join(step.needs) or '-'} | {shards} |")
    return "\n".join(lines)
