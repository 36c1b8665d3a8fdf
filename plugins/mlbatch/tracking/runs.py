"""MLflow runs of a batch: one parent run per Airflow run, one nested run per tracked step."""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from mlbatch.tracking.content import StepRecord
from mlbatch.tracking.store import local_file

BATCH, STEP = "batch", "step"  # values of the mlbatch.kind tag
BATCH_SIZE = 100  # MLflow takes at most 100 params or tags, 1000 metrics, per batch call


def load_mlflow() -> Any:
    """The mlflow package (seconds of imports; no store opened).

    MLflow's own log lines go to the logging of the process (Airflow's task log, at their real
    level) instead of a handler of its own on stderr, which Airflow shows as ERROR lines.
    """
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    import mlflow

    return mlflow


def client(uri: str) -> Any:
    """A client of the store at `uri`: opening a new SQLite store creates its tables (hold store_lock)."""
    return load_mlflow().MlflowClient(tracking_uri=uri)


def experiment_id(mlflow: Any, name: str, artifact_location: str | None) -> str:
    """The experiment named after the batch, created on first use."""
    from mlflow.exceptions import MlflowException

    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return mlflow.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:  # another step of the batch created it a moment ago
        found = mlflow.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def parent_run(mlflow: Any, experiment: str, dag_id: str, run_id: str) -> str:
    """The run of this Airflow run, found or created.

    Two steps finishing together in two processes may both find none and both create one:
    after creating, each searches again and keeps the oldest (ties: the smaller run id), and
    a loser deletes its own. Both then agree on one parent, whatever the store.
    """
    found = parents(mlflow, experiment, run_id)
    if found:
        return found[0]
    mine = mlflow.create_run(experiment, run_name=run_id, tags={
        "mlbatch.kind": BATCH, "mlbatch.dag_id": dag_id, "mlbatch.run_id": run_id}).info.run_id
    winner = parents(mlflow, experiment, run_id)[0]
    if winner != mine:
        mlflow.delete_run(mine)
    else:
        mlflow.set_terminated(mine)
    return winner


def parents(mlflow: Any, experiment: str, run_id: str) -> list[str]:
    """Active parent runs of an Airflow run, oldest first."""
    runs = mlflow.search_runs([experiment], f"tags.`mlbatch.kind` = '{BATCH}' and "
                                            f"tags.`mlbatch.run_id` = {_quoted(run_id)}")
    return [r.info.run_id for r in sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id))]


def step_run(mlflow: Any, experiment: str, key: str, committed_at: str | None = None) -> Any | None:
    """The nested run that logged the step output with this cache key (the commit `committed_at`
    when given, else the newest)."""
    query = f"tags.`mlbatch.kind` = '{STEP}' and tags.`mlbatch.cache_key` = {_quoted(key)}"
    if committed_at:
        query += f" and tags.`mlbatch.committed_at` = {_quoted(committed_at)}"
    runs = mlflow.search_runs([experiment], query, order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def start_step_run(mlflow: Any, experiment: str, parent: str, record: StepRecord) -> tuple[str, bool]:
    """(run id, created) of the step's nested run, with its params and per-fold and overall metrics.

    Idempotent per commit: a step already logged (a task retried after logging) is found, not logged twice.
    """
    tags = record.tags()
    existing = step_run(mlflow, experiment, record.key, tags["mlbatch.committed_at"])
    if existing is not None:
        return existing.info.run_id, False
    run = mlflow.create_run(experiment, run_name=record.step, tags={**tags, "mlflow.parentRunId": parent})
    _log_values(mlflow, run.info.run_id, record)
    return run.info.run_id, True


def log_outputs(mlflow: Any, run_id: str, record: StepRecord) -> list[str]:
    """The step's models and plots into the run's artifacts (files only: no store write); the remote
    model URIs left where they are."""
    remote_models = _log_files(mlflow, run_id, record)
    mlflow.log_dict(run_id, {"output": record.manifest.get("step_uri"),
                             "shards": [s.get("outputs", {}) for s in record.shards]}, "outputs.json")
    return remote_models


def finish_step_run(mlflow: Any, run_id: str, remote_models: list[str]) -> None:
    if remote_models:  # large files on an object store: pointed at, not copied
        mlflow.set_tag(run_id, "mlbatch.model_uris", ",".join(remote_models)[:8000])
    mlflow.set_terminated(run_id)


def _log_values(mlflow: Any, run_id: str, record: StepRecord) -> None:
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    params = [Param(k, v[:6000]) for k, v in record.params().items()]
    metrics = [Metric(k, v, now, step) for k, v, step in record.fold_metrics()]
    metrics += [Metric(k, v, now, 0) for k, v in record.overall_metrics().items()]
    for start in range(0, len(params), BATCH_SIZE):
        mlflow.log_batch(run_id, params=params[start:start + BATCH_SIZE])
    for start in range(0, len(metrics), 1000):
        mlflow.log_batch(run_id, metrics=metrics[start:start + 1000])


def _log_files(mlflow: Any, run_id: str, record: StepRecord) -> list[str]:
    """Log local models and every plot; return the remote model URIs left where they are."""
    remote = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (key, uri, folder) in enumerate(record.files()):
            path = local_file(uri)
            if path is None and key == "model":
                remote.append(uri)
                continue
            if path is None:  # a remote plot: small, fetched to log it under its own name
                import fsspec

                fetched = Path(tmp, str(i), uri.rsplit("/", 1)[-1])
                fetched.parent.mkdir()
                with fsspec.open(uri, "rb") as source:
                    fetched.write_bytes(source.read())
                path = str(fetched)
            mlflow.log_artifact(run_id, path, folder)
    return remote


def _quoted(value: str) -> str:
    # MLflow's filter grammar takes '...' or "..."; run ids and keys hold neither in practice
    return f'"{value}"' if "'" in value else f"'{value}'"
