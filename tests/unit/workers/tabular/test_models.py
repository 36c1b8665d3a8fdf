"""Model steps on a table that is not the churn data: train.gbdt, train.mlp, ensemble.average, predict.batch."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.unit.workers.steps import run_step
from tests.unit.workers.tabular.tables import loans, write_csv
from workers import artifacts
from workers.errors import BadInput
from workers.request import StepRequest
from workers.tabular import mlp, predict
from workers.tabular.models import AveragedModel, GBDTModel

MLP = {"epochs": 4, "patience": 2, "hidden": [16], "batch_size": 64, "learning_rate": 0.02}  # seed 7, as train.gbdt: the same folds


@pytest.fixture(scope="module")
def loans_table(tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp("loans")
    return run_step(tmp, "table", "table.load",
                    params={"source": write_csv(tmp, loans()), "label": "target", "id": "loan"})


def _oof(step: str) -> pd.DataFrame:
    manifest = artifacts.read_step_manifest(step)
    return pd.concat([pd.read_parquet(u) for u in artifacts.step_output_uris(manifest, "oof")], ignore_index=True)


def test_gbdt_on_any_schema(tmp_path, loans_table):
    step = run_step(tmp_path, "gbdt", "train.gbdt", shards=3, params={"max_iter": 30}, inputs={"t": loans_table})
    oof = _oof(step)
    assert sorted(oof["row"]) == list(range(600)) and list(oof.columns) == ["row", "loan", "y", "pred"]
    manifest = artifacts.read_step_manifest(step)
    assert all(0.6 < s["metrics"]["auc"] < 1 for s in manifest["shards"])
    model = artifacts.read_joblib(artifacts.step_output_uris(manifest, "model")[0])
    assert isinstance(model, GBDTModel) and model.feature_names == ["income", "age", "grade", "branch", "owner"]
    assert model.estimator.is_categorical_.tolist() == [False, False, True, True, True]  # native categoricals
    raw = loans().head(50)
    shuffled = raw[list(reversed(raw.columns))].assign(extra=1)  # any column order, extra columns ignored
    assert np.array_equal(model.predict_proba(raw), model.predict_proba(shuffled))


def test_mlp_is_deterministic_with_a_seed_on_cpu(tmp_path, loans_table):
    runs = [run_step(tmp_path, f"mlp{i}", "train.mlp", shards=2, params={**MLP, "device": "cpu"},
                     inputs={"t": loans_table}) for i in range(2)]
    first, second = _oof(runs[0]), _oof(runs[1])
    assert first["pred"].tolist() == second["pred"].tolist()
    assert first["pred"].nunique() > 100  # a real model, not a constant
    models = [artifacts.read_joblib(artifacts.step_output_uris(artifacts.read_step_manifest(r), "model")[0])
              for r in runs]
    assert np.array_equal(models[0].predict_proba(loans()), models[1].predict_proba(loans()))
    shard = artifacts.read_step_manifest(runs[0])["shards"][0]
    assert shard["metrics"]["device"] == "cpu" and 1 <= shard["metrics"]["best_epoch"] <= shard["metrics"]["epochs"]
    test_rows = first[first["row"].isin(_oof(runs[0]).loc[:299, "row"])]
    scored = models[0].predict_proba(loans().iloc[test_rows["row"]])[:, 1]  # the unpickled model, on CPU
    assert scored == pytest.approx(test_rows["pred"].to_numpy(), abs=1e-6)


def test_mlp_writes_learning_curves_for_tensorboard(tmp_path, loans_table):
    step = run_step(tmp_path, "mlp", "train.mlp", params={**MLP, "epochs": 3, "patience": 5},
                    inputs={"t": loans_table})
    folder = Path(artifacts.read_step_manifest(step)["shards"][0]["outputs"]["tensorboard"])
    [events] = folder.glob("events.out.tfevents.*")
    tags = _scalar_tags(events.read_bytes())
    assert {tag: sorted(steps) for tag, steps in tags.items()} == {
        tag: [1, 2, 3] for tag in ("loss/train", "auc/train", "loss/valid", "auc/valid")}


def _scalar_tags(data: bytes) -> dict[str, list[int]]:
    """tag -> the steps it has: read the TFRecord frames of an event file with the tensorboardX protos."""
    from tensorboardX.proto.event_pb2 import Event

    tags: dict[str, list[int]] = {}
    at = 0
    while at < len(data):
        (length,) = struct.unpack("<Q", data[at:at + 8])
        event = Event.FromString(data[at + 12:at + 12 + length])  # after the length and its checksum
        at += 12 + length + 4
        for value in event.summary.value:
            tags.setdefault(value.tag, []).append(event.step)
    return tags


def test_a_gpu_step_without_a_gpu_falls_back_and_says_so(tmp_path, loans_table, monkeypatch, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the worker uses it instead of falling back")
    monkeypatch.setenv("MLBATCH_GPU", "1")  # what the orchestrator sets for resources: {gpu: 1}
    step = run_step(tmp_path, "mlp", "train.mlp", params={**MLP, "epochs": 1}, inputs={"t": loans_table})
    log = capsys.readouterr().out
    assert ("train.mlp: GPU fallback: the step asks for 1 GPU but no GPU is visible "
            "(torch.cuda.is_available() is False); training on CPU") in log
    assert artifacts.read_step_manifest(step)["shards"][0]["metrics"]["device"] == "cpu"
    monkeypatch.delenv("MLBATCH_GPU")
    run_step(tmp_path, "mlp_cpu", "train.mlp", params={**MLP, "epochs": 1}, inputs={"t": loans_table})
    assert "fallback" not in capsys.readouterr().out  # no GPU asked: CPU is no fallback


def test_regression_from_table_to_ensemble(tmp_path):
    df = loans().assign(amount=lambda d: 2 * d["age"] + np.where(d["grade"] == "A", 30, 0))
    table = run_step(tmp_path, "table", "table.load", params={
        "source": write_csv(tmp_path, df.drop(columns=["target"])), "label": "amount", "task": "regression",
        "id": "loan"})
    gbdt = run_step(tmp_path, "gbdt", "train.gbdt", shards=2, params={"max_iter": 50}, inputs={"t": table})
    net = run_step(tmp_path, "mlp", "train.mlp", shards=2, params=MLP, inputs={"t": table})
    assert _oof(gbdt)["row"].tolist() == _oof(net)["row"].tolist()  # same folds
    for step in (gbdt, net):
        metrics = artifacts.read_step_manifest(step)["shards"][0]["metrics"]
        assert set(metrics) >= {"rmse", "mae"} and "auc" not in metrics
    assert artifacts.read_step_manifest(gbdt)["shards"][0]["metrics"]["mae"] < 10  # amount spans about 40..190
    ensemble = run_step(tmp_path, "ensemble", "ensemble.average", inputs={"m": net})
    manifest = artifacts.read_step_manifest(ensemble)
    assert manifest["metrics"]["rmse"] > 0 and manifest["metrics"]["folds"] == 2
    scores = run_step(tmp_path, "score", "predict.batch", inputs={"m": ensemble, "t": table})
    scored = artifacts.read_step_manifest(scores)
    assert scored["shards"][0]["metrics"]["rmse"] > 0 and "flagged" not in scored["counts"]


def test_ensemble_average_and_predict_score_an_mlp(tmp_path, loans_table):
    net = run_step(tmp_path, "mlp", "train.mlp", shards=2, params=MLP, inputs={"t": loans_table})
    ensemble = run_step(tmp_path, "ensemble", "ensemble.average", inputs={"m": net})
    manifest = artifacts.read_step_manifest(ensemble)
    model = artifacts.read_joblib(artifacts.step_output_uris(manifest, "model")[0])
    assert isinstance(model, AveragedModel) and model.schema.label == "target"
    assert 0.6 < manifest["metrics"]["auc"] < 1
    scores = run_step(tmp_path, "score", "predict.batch", shards=2, inputs={"m": ensemble, "t": loans_table})
    parts = artifacts.step_output_uris(artifacts.read_step_manifest(scores), "scores")
    scored = pd.concat([pd.read_parquet(u) for u in parts], ignore_index=True)
    assert scored["loan"].tolist() == loans()["loan"].tolist()
    assert scored["score"].to_numpy() == pytest.approx(model.predict_proba(loans())[:, 1])


def test_scoring_a_table_missing_a_training_column_is_bad_input(tmp_path, loans_table):
    model = run_step(tmp_path, "gbdt", "train.gbdt", params={"max_iter": 5}, inputs={"t": loans_table})
    new = run_step(tmp_path, "new", "table.load",
                   params={"source": write_csv(tmp_path, loans().drop(columns=["grade", "target"])), "id": "loan"})
    with pytest.raises(BadInput, match=r"lacks the training column\(s\) 'grade' that the model was trained on"):
        predict.batch(StepRequest("predict.batch", {}, {"m": model, "t": new}, str(tmp_path / "score")))


def test_mlp_preprocessing_standardises_and_flags_gaps():
    from workers.tabular.schema import infer

    df = loans()
    schema = infer(df, label="target", id="loan")
    X = schema.frame(df)
    prep = mlp.fit_preprocessing(X, df["target"].to_numpy(), schema)
    numeric, categories = mlp.encode(X, schema, prep)
    assert prep["indicators"] == ["income"]  # the one numeric with gaps
    assert numeric.shape == (600, 3) and abs(numeric[:, 0].mean()) < 0.1 and abs(numeric[:, 1].std() - 1) < 0.01
    assert numeric[:, 2].tolist() == X["income"].isna().astype(float).tolist()
    assert categories.shape == (600, 3) and categories.min() >= 0 and (categories[:, 0] == 0).sum() == X["grade"].isna().sum()
