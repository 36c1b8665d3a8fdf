"""GBDT + MLP per fold, stacked, tracked in MLflow, scored: end to end through real Airflow.

The table is scikit-learn's bundled breast cancer data written as a CSV (30 numeric columns
with spaces in their names, plus a string column derived from one of them), label `target`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import image as mpimg
from mlflow import MlflowClient
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from mlbatch.cli.report import collect
from mlbatch.tracking.store import tracking_uri
from tests.integration.airflow_run import dags_test, migrate_db, write_batch
from workers import artifacts

pytestmark = pytest.mark.slow

SEED = 7
GBDT = {"max_iter": 50, "learning_rate": 0.05, "max_depth": 3, "seed": SEED}
PLOTS = ("roc", "calibration", "importance")
TRACKED = {"MLBATCH_TRACKING_MLFLOW": "true"}  # the test suite runs with tracking off elsewhere


@pytest.fixture(scope="module", autouse=True)
def _db():
    migrate_db()


def breast_cancer(path: Path) -> pd.DataFrame:
    df = load_breast_cancer(as_frame=True).frame
    df["size band"] = pd.cut(df["mean radius"], [0, 12, 15, np.inf], labels=["small", "medium", "large"]).astype(str)
    df.to_csv(path, index=False)
    return df


def reference_auc(X: pd.DataFrame, y: np.ndarray) -> float:
    """Plain scikit-learn 5-fold CV of the same GBDT on the same stratified folds."""
    model = HistGradientBoostingClassifier(max_iter=GBDT["max_iter"], learning_rate=GBDT["learning_rate"],
                                           max_depth=GBDT["max_depth"], early_stopping=False, random_state=SEED,
                                           categorical_features="from_dtype")
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED)
    return roc_auc_score(y, cross_val_predict(model, X, y, cv=folds, method="predict_proba")[:, 1])


def test_gbdt_and_mlp_stacked_tracked_and_scored(tmp_path):
    df = breast_cancer(tmp_path / "breast_cancer.csv")
    write_batch(tmp_path, "e2e_stack", f"""
        defaults: {{retries: 0, resources: {{vcpu: 1, memory: 2Gi}}}}
        steps:
          data:
            run: table.load
            params: {{source: '{tmp_path / "breast_cancer.csv"}', label: target}}
          gbdt:
            run: train.gbdt
            needs: [data]
            shards: 5
            params: {GBDT}
          mlp:
            run: train.mlp
            needs: [data]
            shards: 5
            params: {{hidden: [32], epochs: 30, patience: 5, batch_size: 64, seed: {SEED}}}
          ensemble:
            run: ensemble.stack
            needs: [data, gbdt, mlp]
            params: {{importance_rows: 300}}
            gate: {{metric: auc, min: 0.9}}
          score:
            run: predict.batch
            needs: [ensemble, data]
    """)
    X = df.drop(columns=["target"]).astype({"size band": "category"})
    check_stacked_batch(tmp_path, "e2e_stack", ["gbdt", "mlp"], reference_auc(X, df["target"].to_numpy()))


def check_stacked_batch(dags: Path, dag_id: str, models: list[str], reference: float) -> None:
    first = dags_test(dags, dag_id, env=TRACKED)
    assert first.returncode == 0, first.output[-5000:]
    report = collect(dag_id)
    steps = {row.step: row.summary for row in report.steps}
    assert [row.state for row in report.steps] == ["success"] * len(steps)

    # the stack's honest out-of-fold AUC matches plain scikit-learn CV of the same GBDT
    metrics = steps["ensemble"]["metrics"]
    assert abs(metrics["auc"] - reference) <= 0.01, (metrics, reference)
    assert abs(metrics["auc_gbdt"] - reference) <= 0.005, (metrics, reference)  # the same folds, the same model
    assert {f"auc_{m}" for m in models} | {f"logloss_{m}" for m in models} <= set(metrics)
    assert steps["score"]["counts"]["rows"] == steps["data"]["counts"]["rows"]

    # the plots are real images
    outputs = artifacts.read_step_manifest(steps["ensemble"]["uri"])["shards"][0]["outputs"]
    for plot in PLOTS:
        assert mpimg.imread(outputs[plot]).shape[2] in (3, 4)

    # MLflow: one parent run for the Airflow run, a nested run per model step
    client = MlflowClient(tracking_uri(os.environ["MLBATCH_ARTIFACTS"]))
    experiment = client.get_experiment_by_name(dag_id).experiment_id
    parents = client.search_runs([experiment], f"tags.`mlbatch.kind` = 'batch' and tags.`mlbatch.run_id` = '{report.run_id}'")
    assert len(parents) == 1
    nested = {r.data.tags["mlbatch.step"]: r for r in client.search_runs(
        [experiment], f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}'")}
    assert sorted(nested) == sorted([*models, "ensemble"])  # data and score steps are not model steps
    for step, run in nested.items():
        assert run.data.tags["mlbatch.run_id"] == report.run_id and run.data.tags["mlbatch.dag_id"] == dag_id
        assert run.data.tags["mlbatch.cache_key"] == steps[step]["key"] and run.data.tags["mlbatch.code_version"]
        assert steps[step]["mlflow"]["run_id"] == run.info.run_id
    gbdt = nested["gbdt"]
    assert gbdt.data.params["max_iter"] == str(GBDT["max_iter"]) and gbdt.data.params["shards"] == "5"
    assert sorted(m.step for m in client.get_metric_history(gbdt.info.run_id, "fold_auc")) == [0, 1, 2, 3, 4]
    assert gbdt.data.metrics["auc"] == pytest.approx(metrics["auc_gbdt"])  # out of fold, over every fold
    assert len(client.list_artifacts(gbdt.info.run_id, "model")) == 5
    ensemble = nested["ensemble"]
    assert ensemble.data.metrics["auc"] == metrics["auc"] and ensemble.data.params["method"] == "stack"
    for plot in PLOTS:
        local = client.download_artifacts(ensemble.info.run_id, f"plots/{plot}.png", str(dags / "downloaded"))
        assert mpimg.imread(local).ndim == 3
    assert "mlflow ui --backend-store-uri sqlite:///" in first.output

    # a second run: every step a cache hit, nothing new logged, the original runs still named
    logged = len(client.search_runs([experiment], ""))
    second = dags_test(dags, dag_id, env=TRACKED)
    assert second.returncode == 0, second.output[-5000:]
    hits = {row.step: row.summary for row in collect(dag_id).steps}
    assert all(summary["cache_hit"] for summary in hits.values())
    assert len(client.search_runs([experiment], "")) == logged
    for step, run in nested.items():
        assert hits[step]["mlflow"]["run_id"] == run.info.run_id
        assert hits[step]["mlflow"]["computed_by"] == report.run_id
    assert f"computed by Airflow run {report.run_id}, logged as run {ensemble.info.run_id}" in second.output
