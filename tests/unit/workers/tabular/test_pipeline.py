"""Tabular workers on real (small) data: features -> train per fold -> ensemble -> predict."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.unit.workers.steps import run_step as _step
from workers import artifacts
from workers.errors import BadInput
from workers.request import StepRequest
from workers.tabular import ensemble, features, predict, train
from workers.tabular.models import AveragedModel

ROWS = 2000


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict[str, str]:
    """features -> train (3 folds) -> ensemble, shared by the tests that only read it."""
    tmp = tmp_path_factory.mktemp("pipeline")
    feats = _step(tmp, "features", "features.synthetic", params={"rows": ROWS, "seed": 7})
    trained = _step(tmp, "train", "train.gbdt", shards=3, params={"max_iter": 50},
                    inputs={"features": feats})
    model = _step(tmp, "ensemble", "ensemble.average", inputs={"train": trained})
    return {"features": feats, "train": trained, "ensemble": model, "tmp": str(tmp)}



# --- features ------------------------------------------------------------------

def _features(tmp: Path, name: str, **params) -> StepRequest:
    return StepRequest("features.synthetic", params, output=str(tmp / name))


def test_synthetic_is_deterministic(tmp_path):
    files = {}
    for name, seed in [("a", 7), ("b", 7), ("c", 8)]:
        req = _features(tmp_path, name, rows=500, seed=seed)
        result = features.synthetic(req)
        files[name] = Path(result.outputs["features"]).read_bytes()
    assert files["a"] == files["b"]
    assert files["a"] != files["c"]


def test_synthetic_columns_and_counts(tmp_path):
    result = features.synthetic(_features(tmp_path, "f", rows=ROWS, seed=1))
    df = pd.read_parquet(result.outputs["features"])
    assert list(df.columns) == ["customer_id", *features.FEATURES, "churned"]
    assert len(df) == ROWS and df["customer_id"].is_unique
    assert set(df["contract"]) == {0, 1, 2} and set(df["region"]) == set(features.REGIONS)
    assert result.counts == {"rows": ROWS, "columns": 12, "positives": int(df["churned"].sum())}
    assert 0.15 < df["churned"].mean() < 0.5  # a realistic churn rate, both classes well present


def test_source_csv(tmp_path):
    src = tmp_path / "customers.csv"
    features.generate(300, 3).drop(columns=["customer_id"]).to_csv(src, index=False)
    result = features.synthetic(_features(tmp_path, "f", source=str(src)))
    df = pd.read_parquet(result.outputs["features"])
    assert len(df) == 300 and df["customer_id"].tolist() == list(range(1, 301))
    assert result.counts["positives"] == int(df["churned"].sum())


def test_source_missing_column_names_file_and_column(tmp_path):
    src = tmp_path / "customers.csv"
    features.generate(50, 3).drop(columns=["late_payments"]).to_csv(src, index=False)
    with pytest.raises(BadInput, match=r"customers\.csv is missing required column\(s\): late_payments"):
        features.synthetic(_features(tmp_path, "f", source=str(src)))
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize("name, content, match", [
    ("absent.csv", None, "does not exist"),
    ("broken.parquet", b"not parquet at all", "unreadable"),
    ("data.xlsx", b"x", "expected a .csv or .parquet"),
    ("words.csv", b"tenure_months,monthly_charges,total_charges,contract,support_calls,"
                  b"late_payments,num_products,has_autopay,age,region\n"
                  b"ten,1,1,0,0,0,1,1,30,north\n", "'tenure_months' has non-numeric"),
])
def test_bad_sources(tmp_path, name, content, match):
    src = tmp_path / name
    if content is not None:
        src.write_bytes(content)
    with pytest.raises(BadInput, match=match) as info:
        features.synthetic(_features(tmp_path, "f", source=str(src)))
    assert name in str(info.value)


def test_features_refuse_shards(tmp_path):
    with pytest.raises(BadInput, match="one shard"):
        features.synthetic(StepRequest("features.synthetic", {}, output=str(tmp_path), shard_count=2))


# --- train + ensemble -----------------------------------------------------------

def test_folds_cover_every_row_once(pipeline):
    manifest = artifacts.read_step_manifest(pipeline["train"])
    oof = pd.concat(pd.read_parquet(u) for u in artifacts.step_output_uris(manifest, "oof"))
    assert sorted(oof["row"]) == list(range(ROWS))
    assert manifest["counts"] == {"train_rows": 2 * ROWS, "oof_rows": ROWS}
    for shard in manifest["shards"]:
        assert 0.5 < shard["metrics"]["auc"] < 1.0 and shard["metrics"]["logloss"] > 0


def test_ensemble_learns_but_not_perfectly(pipeline):
    manifest = artifacts.read_step_manifest(pipeline["ensemble"])
    assert 0.6 < manifest["metrics"]["auc"] < 0.99
    assert manifest["metrics"]["folds"] == 3 and manifest["counts"]["models"] == 3
    model = artifacts.read_joblib(artifacts.step_output_uris(manifest, "model")[0])
    assert isinstance(model, AveragedModel) and len(model.models) == 3


def test_averaged_model_is_the_mean_of_its_folds(pipeline):
    train_manifest = artifacts.read_step_manifest(pipeline["train"])
    folds = [artifacts.read_joblib(u) for u in artifacts.step_output_uris(train_manifest, "model")]
    X = features.generate(20, 99)  # models take the raw table and select their columns
    expected = sum(m.predict_proba(X)[:, 1] for m in folds) / 3
    got = AveragedModel(folds).predict_proba(X)[:, 1]
    assert got == pytest.approx(expected)


def test_single_shard_trains_on_a_holdout(tmp_path, pipeline):
    req = StepRequest("train.gbdt", {"max_iter": 20}, {"features": pipeline["features"]}, str(tmp_path))
    result = train.gbdt(req)
    assert result.counts == {"train_rows": ROWS * 8 // 10, "oof_rows": ROWS // 5}
    assert set(result.outputs) == {"model", "oof"}


def test_train_without_label_is_bad_input(tmp_path):
    src = tmp_path / "unlabelled.parquet"
    features.generate(100, 1).drop(columns=["churned"]).to_parquet(src)
    feats = _step(tmp_path, "features", "features.synthetic", params={"source": str(src)})
    with pytest.raises(BadInput, match="label column 'churned'"):
        train.gbdt(StepRequest("train.gbdt", {}, {"features": feats}, str(tmp_path / "t")))


def test_train_on_uncommitted_input_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="has no committed manifest"):
        train.gbdt(StepRequest("train.gbdt", {}, {"features": str(tmp_path / "nothing")}, str(tmp_path)))


def test_ensemble_needs_a_model_input(tmp_path, pipeline):
    with pytest.raises(BadInput, match="outputs 'model'"):
        ensemble.average(StepRequest("ensemble.average", {}, {"f": pipeline["features"]}, str(tmp_path)))


# --- predict --------------------------------------------------------------------

def test_predict_shards_cover_all_rows_once(tmp_path, pipeline):
    inputs = {"ensemble": pipeline["ensemble"], "features": pipeline["features"]}
    scored = _step(tmp_path, "scores", "predict.batch", shards=3, params={"threshold": 0.4},
                   inputs=inputs)
    manifest = artifacts.read_step_manifest(scored)
    parts = [pd.read_parquet(u) for u in artifacts.step_output_uris(manifest, "scores")]
    scores = pd.concat(parts, ignore_index=True)

    assert [len(p) for p in parts] == [666, 667, 667]
    assert len(scores) == ROWS and scores["customer_id"].is_unique
    assert (scores["flagged"] == (scores["score"] >= 0.4)).all()
    assert manifest["counts"] == {"rows": ROWS, "flagged": int(scores["flagged"].sum())}
    for shard in manifest["shards"]:
        assert 0.0 < shard["metrics"]["mean_score"] < 1.0 and shard["metrics"]["auc"] > 0.5


def test_predict_with_more_shards_than_rows(tmp_path, pipeline):
    feats = _step(tmp_path, "few", "features.synthetic", params={"rows": 2, "seed": 1})
    inputs = {"m": pipeline["ensemble"], "f": feats}
    results = [predict.batch(StepRequest("predict.batch", {}, inputs, str(tmp_path / "p"), i, 3))
               for i in range(3)]
    assert [r.counts["rows"] for r in results] == [0, 1, 1]
    assert results[0].metrics["mean_score"] is None


def test_predict_names_the_missing_input(tmp_path, pipeline):
    req = StepRequest("predict.batch", {}, {"m": pipeline["ensemble"]}, str(tmp_path))
    with pytest.raises(BadInput, match="outputs 'features'"):
        predict.batch(req)


def test_slice_bounds_partition():
    for total, shards in [(10, 3), (2, 5), (0, 2), (100_001, 7)]:
        bounds = [predict.slice_bounds(total, i, shards) for i in range(shards)]
        assert bounds[0][0] == 0 and bounds[-1][1] == total
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
