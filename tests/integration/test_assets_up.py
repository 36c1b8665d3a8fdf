"""Data-aware batches under a real scheduler: a run of churn_training publishes its model as an
Airflow asset event, and the scheduler then starts churn_scoring by itself, which scores with
that very model.

The example specs run unchanged but for smaller data (their schedules and gates are as shipped).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.integration.airflow_stack import PROJECT, airflow_stack, wait_for
from workers import artifacts

pytestmark = pytest.mark.slow
SMALLER = {  # (batch, step) -> params: seconds instead of minutes, the model still passes its gate
    ("churn_training", "features"): {"rows": 20000, "seed": 7},
    ("churn_training", "train"): {"max_iter": 50},
    ("churn_scoring", "features"): {"rows": 5000, "seed": 11},
}


def _smaller_examples(dags: Path) -> None:
    shutil.copytree(PROJECT / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("churn_training", "churn_scoring"):
        path = dags / "specs" / f"{name}.yaml"
        spec = yaml.safe_load(path.read_text())
        for (batch, step), params in SMALLER.items():
            if batch == name:
                spec["steps"][step]["params"] = params
        if name == "churn_training":  # the stack needs both model steps on the same folds
            spec["steps"]["train"]["shards"] = spec["steps"]["train_mlp"]["shards"] = 2
        path.write_text(yaml.safe_dump(spec, sort_keys=False))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("assets_up")
    _smaller_examples(root / "dags")
    with airflow_stack(root, root / "dags", {"MLBATCH_ARTIFACTS": str(root / "artifacts")}) as running:
        yield running


def _runs(stack, dag_id: str) -> list[dict]:
    return stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=-id")["dag_runs"]


def test_a_committed_model_triggers_the_scoring_batch(stack):
    def listed():
        return {"churn_training", "churn_scoring"} <= {dag["dag_id"] for dag in stack.api("GET", "/api/v2/dags")["dags"]}
    assert wait_for(listed, within_s=120), "the dag-processor never listed the example batches"
    for dag_id in ("churn_scoring", "churn_training"):  # the consumer first: a paused DAG is not queued
        stack.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    training = stack.api("POST", "/api/v2/dags/churn_training/dagRuns", {"logical_date": None})["dag_run_id"]
    path = f"/api/v2/dags/churn_training/dagRuns/{training}"
    assert wait_for(lambda: stack.api("GET", path)["state"] in ("success", "failed"), within_s=300)
    assert stack.api("GET", path)["state"] == "success"

    [asset] = stack.api("GET", "/api/v2/assets?name_pattern=churn_training.ensemble")["assets"]
    assert asset["uri"] == "x-mlbatch://churn_training/ensemble" and asset["group"] == "mlbatch"
    assert [(t["dag_id"], t["task_id"]) for t in asset["producing_tasks"]] == [("churn_training", "ensemble")]
    assert [d["dag_id"] for d in asset["scheduled_dags"]] == ["churn_scoring"]  # what the UI's asset view shows
    [event] = stack.api("GET", f"/api/v2/assets/events?asset_id={asset['id']}")["asset_events"]
    assert event["source_run_id"] == training
    root = str(stack.home.parent / "artifacts")
    model = artifacts.read_json(artifacts.latest_pointer_uri(root, "churn_training", "ensemble"))
    assert event["extra"]["uri"] == model["uri"] and event["extra"]["cache_key"] in model["uri"]
    assert event["extra"]["manifest"] == model["uri"] + "/manifest.json"
    assert event["extra"]["metrics"]["auc"] >= 0.80 and event["extra"]["cache_hit"] is False

    def asset_triggered():
        return [run for run in _runs(stack, "churn_scoring") if run["run_type"] == "asset_triggered"]
    scoring = wait_for(asset_triggered, within_s=120)
    assert len(scoring) == 1, "the scheduler did not start churn_scoring after the new model"
    scoring_path = f"/api/v2/dags/churn_scoring/dagRuns/{scoring[0]['dag_run_id']}"
    triggered_by = stack.api("GET", f"{scoring_path}/upstreamAssetEvents")["asset_events"]
    assert [e["id"] for e in triggered_by] == [event["id"]]
    assert wait_for(lambda: stack.api("GET", scoring_path)["state"] in ("success", "failed"), within_s=300)
    assert stack.api("GET", scoring_path)["state"] == "success"
    score = stack.api("GET", f"{scoring_path}/taskInstances/score/xcomEntries/return_value")["value"]
    manifest = artifacts.read_json(artifacts.step_manifest_uri(score["uri"]))
    assert manifest["cache"]["inputs"]["params.model"] == "latest:" + model["uri"]  # scored with that model
