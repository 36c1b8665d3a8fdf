"""Multiclass tables end to end in the workers: scikit-learn's wine written as CSV with text classes,
the task told by the label, GBDT and MLP folds, both ensembles, predict with class probabilities,
and the out-of-fold quality within 0.01 of plain scikit-learn's 5-fold cross-validation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.workers.steps import run_step
from workers import artifacts
from workers.errors import BadInput
from workers.request import StepRequest
from workers.runner import run
from workers.tabular import label_task
from workers.tabular.models import step_model

FOLDS, SEED = 5, 7
CULTIVARS = np.array(["barbera", "barolo", "grignolino"])


def wine_csv(path) -> str:
    """scikit-learn's wine (178 rows, 13 numeric features, 3 classes) with its class as text, rows shuffled."""
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True)
    df = data.data.rename(columns=lambda c: c.replace("/", "_"))
    df["cultivar"] = CULTIVARS[data.target.to_numpy()]
    df.sample(frac=1.0, random_state=SEED).to_csv(path, index=False)  # shuffled: each scoring slice has every class
    return str(path)


def sklearn_baseline(csv: str) -> dict[str, float]:
    """Plain scikit-learn: HistGradientBoostingClassifier, stratified 5-fold out-of-fold probabilities."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    df = pd.read_csv(csv)
    X, y = df.drop(columns="cultivar"), df["cultivar"]
    cv = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
    proba = cross_val_predict(HistGradientBoostingClassifier(random_state=SEED), X, y, cv=cv, method="predict_proba")
    return {"auc": roc_auc_score(y, proba, multi_class="ovr", average="macro"), "logloss": log_loss(y, proba)}


@pytest.fixture(scope="module")
def wine(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("wine")
    csv = wine_csv(tmp / "wine.csv")
    data = run_step(tmp, "data", "table.load", params={"source": csv, "label": "cultivar"})
    gbdt = run_step(tmp, "gbdt", "train.gbdt", shards=FOLDS, inputs={"features": data})
    mlp = run_step(tmp, "mlp", "train.mlp", shards=FOLDS, params={"epochs": 60}, inputs={"features": data})
    average = run_step(tmp, "average", "ensemble.average", inputs={"train": gbdt})
    stack = run_step(tmp, "stack", "ensemble.stack", inputs={"data": data, "gbdt": gbdt, "mlp": mlp})
    scores = run_step(tmp, "score", "predict.batch", shards=2, inputs={"model": stack, "features": data})
    return {"csv": csv, "data": data, "gbdt": gbdt, "mlp": mlp, "average": average, "stack": stack, "score": scores}


def manifest(uri: str) -> dict:
    return artifacts.read_step_manifest(uri)


def test_task_is_told_by_the_label(wine):
    schema = manifest(wine["data"])["shards"][0]["schema"]
    assert schema["task"] == "multiclass" and schema["classes"] == sorted(CULTIVARS)


@pytest.mark.parametrize("values, task", [
    ([0, 1, 1, 0], "binary"), ([True, False], "binary"), (["a", "b", "c"], "multiclass"),
    ([0, 3, 7, 9, 2], "multiclass"), ([1.0, 2.0, 3.0], "multiclass"), ([0.5, 1.25, 3.0], "regression"),
    (list(range(200)), "regression"), ([1, 2, None, float("nan")], "multiclass"),
])
def test_label_task_rule(values, task):
    assert label_task.detect(values) == task


def test_gbdt_out_of_fold_within_001_of_plain_sklearn(wine):
    ours, plain = manifest(wine["gbdt"])["metrics"], sklearn_baseline(wine["csv"])
    print(f"wine, 5-fold out-of-fold: train.gbdt macro AUC {ours['auc']:.4f} log loss {ours['logloss']:.4f}; "
          f"scikit-learn macro AUC {plain['auc']:.4f} log loss {plain['logloss']:.4f}")
    assert ours["folds"] == FOLDS
    assert abs(ours["auc"] - plain["auc"]) <= 0.01
    assert abs(ours["logloss"] - plain["logloss"]) <= 0.01


def test_mlp_and_ensembles_learn_the_classes(wine):
    for step in ("mlp", "average", "stack"):
        found = manifest(wine[step])["metrics"]
        print(f"wine {step}: macro AUC {found['auc']:.4f} log loss {found['logloss']:.4f}")
        assert found["auc"] > 0.95 and found["logloss"] < 0.5, (step, found)
    stack = manifest(wine["stack"])["metrics"]
    assert stack["weight_gbdt"] + stack["weight_mlp"] == pytest.approx(1.0)
    assert {"auc_gbdt", "auc_mlp", "logloss_mlp"} <= set(stack)


def test_oof_files_hold_one_probability_per_class(wine):
    oof = artifacts.read_parquet(manifest(wine["gbdt"])["shards"][0]["outputs"]["oof"])
    assert {"pred_0", "pred_1", "pred_2"} <= set(oof.columns) and "pred" not in oof.columns
    assert np.allclose(oof[["pred_0", "pred_1", "pred_2"]].sum(axis=1), 1.0)


def test_predict_writes_class_probabilities(wine):
    scored = pd.concat([artifacts.read_parquet(uri) for uri in
                        artifacts.step_output_uris(manifest(wine["score"]), "scores")], ignore_index=True)
    table = pd.read_csv(wine["csv"])
    assert list(scored.columns) == ["row_id", "prediction", "score", *(f"p_{c}" for c in sorted(CULTIVARS))]
    assert len(scored) == len(table) and np.allclose(scored.filter(like="p_").sum(axis=1), 1.0)
    assert (scored["prediction"].to_numpy() == table["cultivar"].to_numpy()).mean() > 0.9
    assert all(shard["metrics"]["auc"] > 0.9 for shard in manifest(wine["score"])["shards"])


def test_models_predict_class_names(wine):
    table = pd.read_csv(wine["csv"]).head(20)
    model = step_model(manifest(wine["stack"]))
    assert list(model.classes_) == sorted(CULTIVARS)
    assert model.predict_proba(table).shape == (20, 3)
    assert set(model.predict(table)) <= set(CULTIVARS)


def test_two_text_values_need_positive(tmp_path):
    csv = tmp_path / "t.csv"
    pd.DataFrame({"x": range(10), "y": ["yes", "no"] * 5}).to_csv(csv, index=False)
    with pytest.raises(BadInput, match="needs three or more .two: task binary with params.positive"):
        run(StepRequest("table.load", {"source": str(csv), "label": "y"}, {}, str(tmp_path / "out")))
