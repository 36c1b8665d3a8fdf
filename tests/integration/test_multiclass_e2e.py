"""The README's multiclass example through real Airflow on the local backend: scikit-learn's wine as
a CSV, the task told by the label, GBDT + MLP per fold, stacked, gated on macro AUC, tracked in
MLflow and scored with class probabilities; out-of-fold quality within 0.01 of plain scikit-learn."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from mlbatch.cli.report import collect, format_report
from mlbatch.tracking.store import tracking_uri
from tests.integration.airflow_run import PROJECT, dags_test, migrate_db, write_batch
from tests.integration.test_ml_e2e import TRACKED
from workers import artifacts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _db():
    migrate_db()


def readme_multiclass_spec() -> str:
    readme = (PROJECT / "README.md").read_text()
    after = readme.split("<!-- multiclass example:", 1)[1]
    return after.split("```yaml\n", 1)[1].split("```", 1)[0]


def readme_figures() -> list[float]:
    """The six figures the README gives under the example: gbdt, scikit-learn, stack (AUC, log loss)."""
    text = (PROJECT / "README.md").read_text().split("<!-- multiclass example:", 1)[1].split("###", 1)[0]
    number = r"(\d[\d.]*\d)"
    found = re.search(rf"train.gbdt macro AUC {number}, log loss {number},\s+against {number} and {number} for plain"
                      rf".*?the stacked ensemble {number} and {number}", text, re.S)
    assert found, "the README's multiclass figures"
    return [float(x) for x in found.groups()]


def sklearn_baseline(df: pd.DataFrame) -> dict[str, float]:
    """Plain scikit-learn: the default HistGradientBoostingClassifier, 5 stratified folds."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    X, y = df.drop(columns="target"), df["target"]
    folds = StratifiedKFold(5, shuffle=True, random_state=7)
    proba = cross_val_predict(HistGradientBoostingClassifier(random_state=7), X, y, cv=folds, method="predict_proba")
    return {"auc": roc_auc_score(y, proba, multi_class="ovr", average="macro"), "logloss": log_loss(y, proba)}


def test_the_readme_multiclass_example_runs_as_written(tmp_path):
    from sklearn.datasets import load_wine

    wine = tmp_path / "wine.csv"
    df = load_wine(as_frame=True).frame
    df.to_csv(wine, index=False)  # the README's one-liner
    spec = readme_multiclass_spec()
    assert "source: data/wine.csv" in spec
    write_batch(tmp_path, "wine", spec.replace("data/wine.csv", str(wine)))  # the project root's data/, here tmp

    run = dags_test(tmp_path, "wine", env=TRACKED)
    assert run.returncode == 0, run.output[-5000:]
    report = collect("wine")
    steps = {row.step: row.summary for row in report.steps}
    assert [row.state for row in report.steps] == ["success"] * 5

    gbdt, stack, plain = steps["gbdt"]["metrics"], steps["ensemble"]["metrics"], sklearn_baseline(df)
    print(f"wine out of fold: gbdt macro AUC {gbdt['auc']:.4f} log loss {gbdt['logloss']:.4f}; "
          f"stack {stack['auc']:.4f} / {stack['logloss']:.4f}; "
          f"scikit-learn {plain['auc']:.4f} / {plain['logloss']:.4f}")
    assert abs(gbdt["auc"] - plain["auc"]) <= 0.01 and abs(gbdt["logloss"] - plain["logloss"]) <= 0.01
    assert stack["auc"] >= plain["auc"] - 0.01 and stack["logloss"] <= plain["logloss"] + 0.01
    assert steps["mlp"]["metrics"]["auc"] > 0.95
    assert readme_figures() == pytest.approx([gbdt["auc"], gbdt["logloss"], plain["auc"], plain["logloss"],
                                              stack["auc"], stack["logloss"]], abs=0.005)  # the README says these

    summary = format_report(report)
    assert f"model quality (ensemble, out of fold over 5 folds): AUC {stack['auc']:.4f}" in summary
    assert "in-sample" in summary.split("score", 1)[1]  # only the scoring step scored its training rows

    scores = pd.concat([artifacts.read_parquet(uri) for uri in
                        artifacts.step_output_uris(artifacts.read_step_manifest(steps["score"]["uri"]), "scores")])
    assert list(scores.columns) == ["row_id", "prediction", "score", "p_0", "p_1", "p_2"]
    assert (scores["prediction"].to_numpy() == df["target"].to_numpy()).mean() > 0.95

    client = MlflowClient(tracking_uri(os.environ["MLBATCH_ARTIFACTS"]))
    experiment = client.get_experiment_by_name("wine").experiment_id
    for step in ("gbdt", "mlp", "ensemble"):
        tracked = client.get_run(steps[step]["mlflow"]["run_id"])
        assert tracked.data.metrics["auc"] == pytest.approx(steps[step]["metrics"]["auc"])
        assert tracked.data.metrics["logloss"] == pytest.approx(steps[step]["metrics"]["logloss"])
        assert tracked.info.experiment_id == experiment
