"""ensemble.stack on real small steps and on hand-made out-of-fold predictions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

from tests.unit.workers.steps import run_step as _step
from workers import artifacts
from workers.errors import BadInput
from workers.request import StepRequest
from workers.runner import run
from workers.tabular.importance import permutation_auc_drop
from workers.tabular.stacked import StackedModel, logit
from workers.tabular.schema import TableSchema
from workers.tabular.table import read_features


@pytest.fixture(scope="module")
def steps(tmp_path_factory) -> dict[str, str]:
    """features -> two GBDTs with different params on the same 3 folds -> stack."""
    tmp = tmp_path_factory.mktemp("stack")
    feats = _step(tmp, "features", "features.synthetic", params={"rows": 1200, "seed": 3})
    deep = _step(tmp, "deep", "train.gbdt", shards=3, params={"max_iter": 30}, inputs={"features": feats})
    shallow = _step(tmp, "shallow", "train.gbdt", shards=3, params={"max_iter": 20, "max_depth": 2},
                    inputs={"features": feats})
    stacked = _step(tmp, "stack", "ensemble.stack", params={"importance_rows": 300},
                    inputs={"features": feats, "deep": deep, "shallow": shallow})
    return {"features": feats, "deep": deep, "shallow": shallow, "stack": stacked, "tmp": str(tmp)}


def _oof(step_uri: str) -> pd.DataFrame:
    manifest = artifacts.read_step_manifest(step_uri)
    parts = [artifacts.read_parquet(s["outputs"]["oof"]).assign(fold=s["shard_index"]) for s in manifest["shards"]]
    return pd.concat(parts).sort_values("row", ignore_index=True)


def test_metrics_of_each_model_and_of_the_cross_validated_stack(steps):
    metrics = artifacts.read_step_manifest(steps["stack"])["metrics"]
    deep, shallow = _oof(steps["deep"]), _oof(steps["shallow"])
    y = deep["y"].to_numpy()
    assert metrics["auc_deep"] == pytest.approx(roc_auc_score(y, deep["pred"]))
    assert metrics["logloss_shallow"] == pytest.approx(log_loss(y, shallow["pred"]))
    # the combiner of fold k never saw fold k: recompute it independently
    X = logit(np.column_stack([deep["pred"], shallow["pred"]]))
    expected = np.empty(len(y))
    for fold in range(3):
        test = deep["fold"].to_numpy() == fold
        expected[test] = LogisticRegression().fit(X[~test], y[~test]).predict_proba(X[test])[:, 1]
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, expected))
    assert metrics["logloss"] == pytest.approx(log_loss(y, expected))
    assert metrics["folds"] == 3 and metrics["models"] == 2
    final = LogisticRegression().fit(X, y)
    assert [metrics["weight_deep"], metrics["weight_shallow"]] == pytest.approx(list(final.coef_[0]))


def test_stacked_model_scores_raw_table_rows_and_predict_batch_uses_it(steps):
    manifest = artifacts.read_step_manifest(steps["stack"])
    model = artifacts.read_joblib(manifest["shards"][0]["outputs"]["model"])
    assert isinstance(model, StackedModel) and list(model.bases) == ["deep", "shallow"]
    assert model.schema.label == "churned" and "region" in model.feature_names
    X = read_features(artifacts.read_step_manifest(steps["features"])).head(50)  # raw rows, label and id included
    proba = model.predict_proba(X)
    assert proba.shape == (50, 2) and np.allclose(proba.sum(axis=1), 1)
    base = np.column_stack([m.predict_proba(X)[:, 1] for m in model.bases.values()])
    expected = 1 / (1 + np.exp(-(model.intercept + logit(base) @ np.array(model.weights))))
    assert proba[:, 1] == pytest.approx(expected)

    scored = _step(Path(steps["tmp"]), "score", "predict.batch",
                   inputs={"ensemble": steps["stack"], "features": steps["features"]})
    scores = pd.concat(artifacts.read_parquet(u) for u in
                       artifacts.step_output_uris(artifacts.read_step_manifest(scored), "scores"))
    assert len(scores) == 1200 and scores["score"].between(0, 1).all()


def test_plots_are_valid_pngs(steps):
    outputs = artifacts.read_step_manifest(steps["stack"])["shards"][0]["outputs"]
    for key in ("roc", "calibration", "importance"):
        with Image.open(outputs[key]) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] >= 400
        assert Path(outputs[key]).stat().st_size < 150_000


def test_average_with_weights_and_no_data_step(steps, tmp_path):
    out = _step(tmp_path, "avg", "ensemble.stack",
                params={"method": "average", "weights": {"deep": 3, "shallow": 1}},
                inputs={"deep": steps["deep"], "shallow": steps["shallow"]})
    manifest = artifacts.read_step_manifest(out)
    deep, shallow = _oof(steps["deep"]), _oof(steps["shallow"])
    expected = 0.75 * deep["pred"] + 0.25 * shallow["pred"]
    assert manifest["metrics"]["auc"] == pytest.approx(roc_auc_score(deep["y"], expected))
    assert set(manifest["shards"][0]["outputs"]) == {"model", "roc", "calibration"}  # no table: no importance


def test_average_weights_must_name_the_input_steps(steps, tmp_path):
    with pytest.raises(BadInput, match=r"weights must name each input model step .*unknown \['gbdt'\].*missing"):
        run(StepRequest("ensemble.stack", {"method": "average", "weights": {"gbdt": 1, "deep": 1}},
                        {"deep": steps["deep"], "shallow": steps["shallow"]}, str(tmp_path / "x")))


# --- hand-made out-of-fold predictions -------------------------------------------------------

class ConstantModel:
    """A fold model that predicts one probability for every row."""

    schema = TableSchema(label="y", numeric=["x"])

    def __init__(self, p: float):
        self.p = p

    def predict_proba(self, X):
        return np.column_stack([np.full(len(X), 1 - self.p), np.full(len(X), self.p)])


def _model_step(tmp: Path, name: str, folds: list[list[int]], y: list[int], pred: list[float]) -> str:
    """A committed model step whose shard i predicted the rows in folds[i]."""
    output = str(tmp / name)
    for i, rows in enumerate(folds):
        oof = pd.DataFrame({"row": rows, "y": [y[r] for r in rows], "pred": [pred[r] for r in rows]})
        shard = artifacts.shard_dir(output, i)
        artifacts.write_shard_manifest(
            output, worker="train.gbdt", shard_index=i, shard_count=len(folds), try_number=1, params={},
            counts={}, metrics={}, started_at=pd.Timestamp.now(tz="UTC").to_pydatetime(),
            outputs={"oof": artifacts.write_parquet(f"{shard}/oof.parquet", oof),
                     "model": artifacts.write_joblib(f"{shard}/model.joblib", ConstantModel(0.5))})
    artifacts.commit_step(output, len(folds))
    return output


Y = [0, 1, 0, 1, 1, 0, 1, 0]
GOOD = [0.1, 0.9, 0.2, 0.8, 0.7, 0.3, 0.6, 0.4]  # ranks every positive above every negative
NOISE = [0.5, 0.4, 0.6, 0.5, 0.3, 0.7, 0.5, 0.5]


def test_known_oof_metrics_per_model_and_for_their_average(tmp_path):
    folds = [[0, 1, 2, 3], [4, 5, 6, 7]]
    good, noise = _model_step(tmp_path, "good", folds, Y, GOOD), _model_step(tmp_path, "noise", folds, Y, NOISE)
    out = _step(tmp_path, "avg", "ensemble.stack", params={"method": "average"}, inputs={"good": good, "noise": noise})
    metrics = artifacts.read_step_manifest(out)["metrics"]
    assert metrics["auc_good"] == 1.0
    assert metrics["auc_noise"] == pytest.approx(roc_auc_score(Y, NOISE))
    assert metrics["auc"] == pytest.approx(roc_auc_score(Y, (np.array(GOOD) + NOISE) / 2))
    assert metrics["logloss_good"] == pytest.approx(log_loss(Y, GOOD))
    assert metrics["folds"] == 2 and metrics["weight_good"] == 0.5


@pytest.mark.parametrize("other_folds, problem", [
    ([[0, 1, 2, 4], [3, 5, 6, 7]], "2 rows fall in a different fold"),
    ([[0, 1, 2, 3], [4, 5, 6]], "8 vs 7 out-of-fold rows"),
])
def test_refuses_steps_with_different_folds_naming_both(tmp_path, other_folds, problem):
    gbdt = _model_step(tmp_path, "gbdt", [[0, 1, 2, 3], [4, 5, 6, 7]], Y, GOOD)
    mlp = _model_step(tmp_path, "mlp", other_folds, Y, NOISE)
    with pytest.raises(BadInput, match=rf"steps 'gbdt' and 'mlp' did not predict the same folds \({problem}"):
        run(StepRequest("ensemble.stack", {}, {"gbdt": gbdt, "mlp": mlp}, str(tmp_path / "stack")))


def test_needs_a_model_step(tmp_path):
    feats = _step(tmp_path, "features", "features.synthetic", params={"rows": 50})
    with pytest.raises(BadInput, match="needs at least one input model step .*inputs: features"):
        run(StepRequest("ensemble.stack", {}, {"features": feats}, str(tmp_path / "stack")))


def test_permutation_importance_finds_the_one_column_that_matters():
    class OnlyA:
        def predict_proba(self, X):
            p = 1 / (1 + np.exp(-X["a"].to_numpy()))
            return np.column_stack([1 - p, p])

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400),
                      "c": pd.Categorical(rng.choice(["x", "y"], size=400))})
    y = (X["a"] + rng.normal(scale=0.5, size=400) > 0).astype(int)
    drops = permutation_auc_drop(OnlyA(), X, y, ["a", "b", "c"], repeats=2, seed=1)
    assert drops["a"] > 0.2 and drops["b"] == 0 and drops["c"] == 0
    assert X["c"].dtype == "category"  # the caller's frame is left alone


# -- regression --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def regression_steps(tmp_path_factory) -> dict[str, str]:
    """scikit-learn's diabetes data as a CSV -> table.load (task: regression) -> two GBDTs -> stack."""
    from sklearn.datasets import load_diabetes

    tmp = tmp_path_factory.mktemp("stack_regression")
    frame = load_diabetes(as_frame=True).frame
    frame.to_csv(tmp / "diabetes.csv", index=False)
    data = _step(tmp, "data", "table.load", params={"source": str(tmp / "diabetes.csv"), "label": "target",
                                                     "task": "regression"})
    deep = _step(tmp, "deep", "train.gbdt", shards=3, params={"max_iter": 40}, inputs={"data": data})
    shallow = _step(tmp, "shallow", "train.gbdt", shards=3, params={"max_iter": 20, "max_depth": 2},
                    inputs={"data": data})
    stacked = _step(tmp, "stack", "ensemble.stack", inputs={"data": data, "deep": deep, "shallow": shallow})
    return {"data": data, "deep": deep, "shallow": shallow, "stack": stacked, "tmp": str(tmp)}


def test_regressors_are_stacked_by_a_cross_validated_linear_model(regression_steps):
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import mean_absolute_error, root_mean_squared_error

    manifest = artifacts.read_step_manifest(regression_steps["stack"])
    metrics = manifest["metrics"]
    deep, shallow = _oof(regression_steps["deep"]), _oof(regression_steps["shallow"])
    X, y = np.column_stack([deep["pred"], shallow["pred"]]), deep["y"].to_numpy()
    expected = np.empty(len(y))
    for fold in range(3):
        test = deep["fold"].to_numpy() == fold
        expected[test] = LinearRegression(positive=True).fit(X[~test], y[~test]).predict(X[test])
    assert metrics["rmse"] == pytest.approx(root_mean_squared_error(y, expected))
    assert metrics["mae"] == pytest.approx(mean_absolute_error(y, expected))
    assert metrics["rmse_deep"] == pytest.approx(root_mean_squared_error(y, deep["pred"]))
    assert "auc" not in metrics and manifest["shards"][0]["task"] == "regression"
    assert set(manifest["shards"][0]["outputs"]) == {"model"}  # ROC and calibration are binary plots


def test_stacked_regressor_predicts_values_and_predict_batch_scores_rmse(regression_steps):
    model = artifacts.read_joblib(artifacts.step_output_uris(artifacts.read_step_manifest(regression_steps["stack"]),
                                                             "model")[0])
    rows = read_features(artifacts.read_step_manifest(regression_steps["data"])).head(20)
    assert model.task == "regression"
    assert np.allclose(model.predict(rows), model.intercept + model.base_predictions(rows) @ np.array(model.weights))
    scored = _step(Path(regression_steps["tmp"]), "score", "predict.batch",
                   inputs={"stack": regression_steps["stack"], "data": regression_steps["data"]})
    assert "rmse" in artifacts.read_step_manifest(scored)["metrics"]


def test_a_binary_and_a_regression_model_are_not_stacked_together(steps, regression_steps, tmp_path):
    with pytest.raises(BadInput, match=r"one task, but its inputs differ: 'clf' \(binary\), 'reg' \(regression\)"):
        run(StepRequest("ensemble.stack", {}, {"clf": steps["deep"], "reg": regression_steps["deep"]},
                        str(tmp_path / "stack")))


def test_a_fold_per_shard_step_commits_its_out_of_fold_metrics_over_every_fold_and_its_task(steps, regression_steps):
    from sklearn.metrics import root_mean_squared_error

    binary = artifacts.read_step_manifest(steps["deep"])
    oof = _oof(steps["deep"])
    assert binary["task"] == "binary" and binary["metrics"]["folds"] == 3
    assert binary["metrics"]["auc"] == pytest.approx(roc_auc_score(oof["y"], oof["pred"]))
    regression = artifacts.read_step_manifest(regression_steps["deep"])
    oof = _oof(regression_steps["deep"])
    assert regression["task"] == "regression" and "auc" not in regression["metrics"]
    assert regression["metrics"]["rmse"] == pytest.approx(root_mean_squared_error(oof["y"], oof["pred"]))
