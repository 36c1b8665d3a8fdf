"""The page's FastAPI app, mounted by Airflow's api-server under /mlbatch (plugin.py).

A plugin's endpoints are not protected by Airflow by themselves: every route here depends on
Airflow's own auth dependencies, so a request without a valid session (the UI's JWT cookie) or
bearer token is refused, and a user sees only the batches the auth manager lets them read.
Every route only reads.
"""
from __future__ import annotations

from typing import Annotated

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse

from mlbatch.ui import page
from mlbatch.ui.link import PAGE_PREFIX

RECENT_RUNS = 20  # runs on a batch's page: the chart's points and the advice's sample

app = FastAPI(title="mlbatch", description="The batches' runs, steps, cost and right-sizing advice (read-only)")
ReadRuns = Depends(requires_access_dag("GET", DagAccessEntity.RUN))


def _base(request: Request) -> str:
    return request.scope.get("root_path", PAGE_PREFIX).rstrip("/") + "/"


def _airflow_root(request: Request) -> str:
    root = request.scope.get("root_path", PAGE_PREFIX).rstrip("/")
    return root[: -len(PAGE_PREFIX)] if root.endswith(PAGE_PREFIX) else ""


@app.get("/", response_class=HTMLResponse)
def batches(request: Request, user: GetUserDep) -> str:
    from airflow.api_fastapi.app import get_auth_manager

    from mlbatch.ui import data

    readable = get_auth_manager().get_authorized_dag_ids(user=user, method="GET")
    return page.index(data.latest_runs(readable, per_batch=5), _base(request))


@app.get("/batches/{dag_id}", response_class=HTMLResponse, dependencies=[ReadRuns])
def batch(request: Request, dag_id: str) -> str:
    from mlbatch.ui import data

    found = data.batch(dag_id, RECENT_RUNS)
    if found is None:
        raise HTTPException(404, f"no mlbatch batch {dag_id!r}")
    return page.batch(dag_id, found.runs, found.gated, found.advice, _base(request))


@app.get("/batches/{dag_id}/runs/{run_id}", response_class=HTMLResponse, dependencies=[ReadRuns])
def run(request: Request, dag_id: str, run_id: str) -> str:
    from mlbatch.ui import data

    found = data.batch(dag_id, RECENT_RUNS)
    view = next((r for r in found.runs if r.run_id == run_id), None) if found else None
    if view is None:
        raise HTTPException(404, f"no run {run_id!r} of mlbatch batch {dag_id!r} among its last {RECENT_RUNS}")
    return page.run(view, _base(request), _airflow_root(request))


@app.get("/api/batches/{dag_id}", dependencies=[ReadRuns])
def batch_json(dag_id: str) -> Annotated[dict, "the batch's runs and steps as the page shows them"]:
    from dataclasses import asdict

    from mlbatch.ui import data

    found = data.batch(dag_id, RECENT_RUNS)
    if found is None:
        raise HTTPException(404, f"no mlbatch batch {dag_id!r}")
    return {"dag_id": dag_id, "gated": found.gated, "advice": found.advice,
            "runs": [{**asdict(r), "cost_usd": r.cost_usd} for r in found.runs]}
