"""Track one committed step, or point at the run that computed a cache hit. Never fails the step."""
from __future__ import annotations

import logging
import threading
from typing import Any

from mlbatch.tracking.content import StepRecord
from mlbatch.tracking.store import (artifact_location, open_command, open_hint, run_page, scrub, shown, store_lock,
                                    tracking_uri)


def preload() -> threading.Thread:
    """Import mlflow in the background while a model step's workers run (seconds of imports that
    would otherwise come after its last shard). For the step operator, at the start of a tracked step."""
    from mlbatch.tracking import runs

    thread = threading.Thread(target=runs.load_mlflow, name="mlbatch-mlflow-preload", daemon=True)
    thread.start()
    return thread


def prepare_store(root: str) -> str | None:
    """Create the default store's tables ahead of the first model step (MLflow's migrations take
    seconds); what `mlbatch demo` and `mlbatch up` do. Returns the store's URI, None where none is local."""
    from mlbatch.tracking import runs

    uri = tracking_uri(root)
    if uri is None or not uri.startswith("sqlite:///"):
        return None
    with store_lock(uri, "prepare"):
        runs.client(uri).search_experiments(max_results=1)
    return uri


def track_step(record: StepRecord, *, root: str, cache_hit: bool, log: logging.Logger | Any) -> dict[str, Any] | None:
    """Log a computed step as a nested run of its Airflow run's MLflow run; on a cache hit log
    nothing and find the run that computed the output. Returns where the run is, or None."""
    uri = tracking_uri(root)
    if uri is None:
        log.info("MLflow: step %s not tracked: the artifact root %s is not a local path; "
                 "set MLFLOW_TRACKING_URI to a tracking server", record.step, root)
        return None
    try:
        return _track(record, uri, root, cache_hit, log)
    except Exception as error:  # tracking is a record of the work, never a reason to fail it
        log.warning("MLflow: could not track step %s in %s (the step itself succeeded): %s: %s",
                    record.step, shown(uri), type(error).__name__, scrub(str(error), uri))
        return None


def _track(record: StepRecord, uri: str, root: str, cache_hit: bool, log: Any) -> dict[str, Any] | None:
    """The lock covers the store writes only: importing mlflow and copying the models happen outside
    it, so two steps that commit together do not wait for each other's (see bench/tracking.py)."""
    from mlbatch.tracking import runs

    runs.load_mlflow()
    with store_lock(uri, record.run_id):
        mlflow = runs.client(uri)
        experiment = runs.experiment_id(mlflow, record.dag_id, artifact_location(root, uri))
        if cache_hit:
            found = runs.step_run(mlflow, experiment, record.key, record.manifest.get("committed_at"))
            if found is None:
                log.info("MLflow: no run recorded for cache key %s in %s", record.key, shown(uri))
                return None
            run_id, computed_by, created = found.info.run_id, found.data.tags.get("mlbatch.run_id", "?"), False
        else:
            parent = runs.parent_run(mlflow, experiment, record.dag_id, record.run_id)
            (run_id, created), computed_by = runs.start_step_run(mlflow, experiment, parent, record), record.run_id
    if created:
        remote_models = runs.log_outputs(mlflow, run_id, record)
        with store_lock(uri, record.run_id):
            runs.finish_step_run(mlflow, run_id, remote_models)
    where = {"tracking_uri": shown(uri), "experiment_id": experiment, "run_id": run_id, "computed_by": computed_by,
             "open": open_command(uri), "page": run_page(uri, experiment, run_id)}
    verb = "computed by Airflow run %s, logged as" % computed_by if cache_hit else "logged as"
    log.info("MLflow: step %s %s run %s (experiment %s) in %s; %s",
             record.step, verb, run_id, record.dag_id, shown(uri), open_hint(uri, where["page"]))
    return where
