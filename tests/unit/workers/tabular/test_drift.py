"""drift.features on real tables: PSI and KS per feature, its metrics, and its bad inputs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workers import artifacts
from workers.tabular.drift import ks, psi
from workers.errors import BadInput
from workers.tabular.features import SCHEMA, generate
from workers.request import StepRequest
from workers.runner import run


def test_psi_is_about_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(1)
    reference = pd.Series(rng.normal(0, 1, 20000))
    assert psi(reference, pd.Series(rng.normal(0, 1, 20000))) < 0.01
    assert 0.1 < psi(reference, pd.Series(rng.normal(0.5, 1, 20000))) < 0.5  # half a standard deviation
    assert psi(reference, pd.Series(rng.normal(2, 1, 20000))) > 1


def test_psi_of_a_column_with_few_values_uses_one_bin_per_value():
    reference = pd.Series([0] * 500 + [1] * 300 + [2] * 200)
    current = pd.Series([0] * 200 + [1] * 300 + [2] * 500)
    expected = 2 * (0.3 * np.log(0.5 / 0.2))  # the two bins whose shares swapped; the middle one is stable
    assert psi(reference, current) == pytest.approx(expected)


def test_ks_is_the_largest_gap_between_the_distribution_functions():
    assert ks(pd.Series([1.0, 2, 3, 4]), pd.Series([1.0, 2, 3, 4])) == 0
    assert ks(pd.Series([1.0, 2, 3]), pd.Series([10.0, 11])) == 1
    assert ks(pd.Series([1.0, 2, 3, 4]), pd.Series([3.0, 4, 5, 6])) == pytest.approx(0.5)


def test_ks_agrees_with_scipy_also_on_ties():
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(3)
    for _ in range(5):
        a, b = rng.normal(0, 1, rng.integers(5, 300)).round(1), rng.normal(0.3, 1, rng.integers(5, 300)).round(1)
        assert ks(pd.Series(a), pd.Series(b)) == pytest.approx(ks_2samp(a, b).statistic)


def _table(tmp_path, name, df):
    output = str(tmp_path / name)
    uri = artifacts.write_parquet(artifacts.join(artifacts.shard_dir(output, 0), "features.parquet"), df)
    artifacts.write_shard_manifest(output, worker="features.synthetic", shard_index=0, shard_count=1, try_number=1,
                                   params={}, counts={"rows": len(df)}, metrics={}, outputs={"features": uri},
                                   started_at=pd.Timestamp.now(tz="UTC").to_pydatetime(),
                                   extra={"schema": SCHEMA.model_dump(mode="json")})  # as features.synthetic writes it
    artifacts.commit_step(output, 1)
    return output


@pytest.fixture
def tables(tmp_path):
    moved = generate(3000, seed=9)
    moved["monthly_charges"] = moved["monthly_charges"] * 1.5  # prices went up
    return {"training": _table(tmp_path, "training", generate(3000, seed=7)),
            "same": _table(tmp_path, "same", generate(3000, seed=8)),
            "moved": _table(tmp_path, "moved", moved)}


def _drift(tmp_path, inputs, **params):
    manifest = run(StepRequest("drift.features", {"reference": "training", **params}, inputs, str(tmp_path / "drift")))
    return manifest, artifacts.read_json(manifest["outputs"]["drift"])


def test_the_worker_names_the_feature_that_drifted(tmp_path, tables):
    manifest, report = _drift(tmp_path, {"training": tables["training"], "new": tables["moved"]})
    assert manifest["metrics"]["drift_feature"] == "monthly_charges" and manifest["metrics"]["drift"] > 0.25
    assert set(report["features"]) == {"tenure_months", "monthly_charges", "total_charges", "contract",
                                       "support_calls", "late_payments", "num_products", "has_autopay", "age"}
    assert report["features"]["age"] < 0.05  # untouched columns stay stable
    assert (report["method"], report["reference_rows"], report["current_rows"]) == ("psi", 3000, 3000)


def test_a_table_from_the_same_population_shows_no_drift(tmp_path, tables):
    same, _ = _drift(tmp_path, {"training": tables["training"], "new": tables["same"]}, method="ks")
    moved, _ = _drift(tmp_path, {"training": tables["training"], "new": tables["moved"]}, method="ks")
    assert same["metrics"]["drift"] < 0.08 < 0.2 < moved["metrics"]["drift"]


def test_the_reference_can_be_another_batchs_latest_output(tmp_path, tables, monkeypatch):
    root = str(tmp_path / "root")
    artifacts.publish_latest(root, "churn_training", "features", tables["training"], "manual__1")
    monkeypatch.setenv("MLBATCH_ARTIFACTS", root)
    manifest = run(StepRequest("drift.features", {"reference": "churn_training.features", "columns": ["age"]},
                               {"new": tables["moved"]}, str(tmp_path / "drift")))
    assert manifest["metrics"]["drift_feature"] == "age" and manifest["metrics"]["drift"] < 0.05


@pytest.mark.parametrize("params, inputs, message", [
    ({"reference": "training", "columns": ["region"]}, ("training", "moved"), "column 'region' of the reference table is not numeric"),
    ({"reference": "training", "columns": ["colour"]}, ("training", "moved"), "column 'colour' is not in the reference table"),
    ({"reference": "trainig"}, ("training", "moved"), "reference 'trainig' is neither an input step (training, moved)"),
    ({"reference": "training"}, ("training", "same", "moved"), "input steps with features (besides the reference): moved, same"),
])
def test_bad_inputs_say_what_is_wrong(tmp_path, tables, params, inputs, message):
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(StepRequest("drift.features", params, {name: tables[name] for name in inputs}, str(tmp_path / "drift")))
