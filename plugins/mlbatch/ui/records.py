"""What Airflow's metadata DB holds about mlbatch runs, read-only: runs, task instances, XCom summaries.

Plain dicts out, so the views (views.py) are pure and tested without a database.
"""
from __future__ import annotations

from typing import Any

MLBATCH_TAG = "mlbatch"  # every DAG built from a spec carries it (mlbatch.run.factory)
TRIGGERS = {"scheduled": "cron", "manual": "manual", "asset_triggered": "asset", "backfill": "backfill",
            "asset_materialization": "asset"}


def batch_files(dag_ids: set[str] | None) -> dict[str, str]:
    """dag_id -> loader file of every mlbatch DAG the user may read (None: all)."""
    from airflow.models.dag import DagModel, DagTag
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(DagModel.dag_id, DagModel.fileloc).join(DagTag, DagTag.dag_id == DagModel.dag_id).where(
        DagTag.name == MLBATCH_TAG, DagModel.is_stale.is_(False))
    with create_session() as session:
        rows = session.execute(query.order_by(DagModel.dag_id)).all()
    return {dag_id: fileloc for dag_id, fileloc in rows if dag_ids is None or dag_id in dag_ids}


def recent_runs(dag_id: str, limit: int) -> list[dict[str, Any]]:
    """The latest `limit` runs of a batch, newest first, each with its task instances and summaries."""
    from airflow.models import DagRun, TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        runs = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).limit(limit)).all()
        run_ids = [run.run_id for run in runs]
        tis = session.scalars(select(TaskInstance).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id.in_(run_ids), TaskInstance.map_index == -1)).all()
        xcoms = session.scalars(select(XComModel).where(
            XComModel.dag_id == dag_id, XComModel.run_id.in_(run_ids), XComModel.key == "return_value",
            XComModel.map_index == -1)).all()
        summaries = {(x.run_id, x.task_id): XComModel.deserialize_value(x) for x in xcoms}
        return [_run(run, [ti for ti in tis if ti.run_id == run.run_id], summaries) for run in runs]


def _run(run: Any, tis: list[Any], summaries: dict[tuple[str, str], Any]) -> dict[str, Any]:
    return {
        "run_id": run.run_id, "state": str(run.state), "start": run.start_date, "end": run.end_date,
        "trigger": TRIGGERS.get(str(run.run_type), str(run.run_type)),
        "tasks": [{"task_id": ti.task_id, "state": str(ti.state) if ti.state else "none", "try_number": ti.try_number,
                   "duration_s": ti.duration, "summary": summaries.get((run.run_id, ti.task_id)) or {}}
                  for ti in sorted(tis, key=lambda ti: (ti.start_date is None, ti.start_date or 0))],
    }
