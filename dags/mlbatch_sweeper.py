"""mlbatch maintenance: remove step workers whose Airflow task instance is no longer running.

Every 10 minutes: step containers of the docker backend, live AWS Batch jobs and ECS tasks of
mlbatch steps, each stopped when its task instance has ended, failed or was cleared, and it is
older than the grace period (params: grace_seconds; only_dags limits a manual run to some
batches). Each action is logged with its reason. See README "Security model".
"""
from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task


@dag(
    dag_id="mlbatch_sweeper",
    schedule=timedelta(minutes=10),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["mlbatch-maintenance"],  # not "mlbatch": the mlbatch page lists the DAGs with that tag as batches
    doc_md=__doc__,
    params={"grace_seconds": 300, "only_dags": []},
    default_args={"owner": "mlbatch", "retries": 1, "retry_delay": timedelta(minutes=1),
                  "execution_timeout": timedelta(minutes=9)},
)
def mlbatch_sweeper() -> None:
    @task
    def sweep(params: dict | None = None, ti=None) -> dict:  # noqa: ANN001 - Airflow injects ti
        from mlbatch.sweep.task import sweep_all

        params = params or {}
        report = sweep_all(ti, grace_s=float(params.get("grace_seconds", 300)),
                           only_dags=list(params.get("only_dags") or []))
        return {"stopped": [f"{o.resource.kind} {o.resource.id}: {o.reason}" for o in report.stopped]}

    sweep()


mlbatch_sweeper()
