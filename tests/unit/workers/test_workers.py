"""Workers on real (small) data, called as plain functions and through `python -m workers`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from workers import artifacts, checks, ensemble, features, predict, train
from workers.errors import BAD_INPUT_EXIT_CODE, BadInput
from workers.models import AveragedModel
from workers.request import StepRequest
from workers.runner import run

ROOT = Path(__file__).resolve().parents[3]
ROWS = 2000


def _step(tmp: Path, name: str, worker: str, shards: int = 1, params: dict | None = None,
          inputs: dict | None = None) -> str:
    """Run every shard of a step in-process and commit it; return its output URI."""
    output = str(tmp / name)
    for i in range(shards):
        run(StepRequest(worker, params or {}, inputs or {}, output, shard_index=i, shard_count=shards))
    artifacts.commit_step(output, shards)
    return output


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict[str, str]:
    """features -> train (3 folds) -> ensemble, shared by the tests that only read it."""
    tmp = tmp_path_factory.mktemp("pipeline")
    feats = _step(tmp, "features", "features.synthetic", params={"rows": ROWS, "seed": 7})
    trained = _step(tmp, "train", "train.gbdt", shards=3, params={"max_iter": 50},
                    inputs={"features": feats})
    model = _step(tmp, "ensemble", "ensemble.average", inputs={"train": trained})
    return {"features": feats, "train": trained, "ensemble": model, "tmp": str(tmp)}


# --- StepRequest ---------------------------------------------------------------

def test_request_fills_defaults_and_round_trips():
    req = StepRequest("train.gbdt", {"max_iter": 20}, {"features": "/a"}, "/out", 1, 3, 2)
    assert req.params["max_iter"] == 20 and req.params["learning_rate"] == 0.1
    assert req.settings.max_iter == 20
    again = StepRequest.from_json(req.to_json())
    assert again == req and again.params == req.params


@pytest.mark.parametrize("params, field", [({"rows": 0}, "rows"), ({"rowz": 5}, "rowz"),
                                           ({"seed": "abc"}, "seed")])
def test_invalid_params_name_the_field(params, field):
    with pytest.raises(BadInput, match=f"'{field}'"):
        StepRequest("features.synthetic", params, output="/out")


@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"),
    ('{"worker": "nope", "output": "/o"}', "unknown worker 'nope'"),
    ('{"worker": "check.noop", "output": "/o", "shard_index": 3, "shard_count": 3}', "outside 0..2"),
    ('{"worker": "check.noop", "output": "/o", "colour": 1}', "unknown field"),
])
def test_invalid_requests(text, match):
    with pytest.raises(BadInput, match=match):
        StepRequest.from_json(text)


def test_env_overrides_shard_and_try():
    req = StepRequest("check.noop", output="/o", shard_index=0, shard_count=10)
    assert req.with_env({"MLBATCH_SHARD_INDEX": "4", "AWS_BATCH_JOB_ARRAY_INDEX": "2"}).shard_index == 4
    assert req.with_env({"AWS_BATCH_JOB_ARRAY_INDEX": "2"}).shard_index == 2
    mapped = req.with_env({"AWS_BATCH_JOB_ARRAY_INDEX": "1", "MLBATCH_SHARD_MAP": "3,7,9",
                           "MLBATCH_TRY_NUMBER": "3"})
    assert (mapped.shard_index, mapped.try_number) == (7, 3)
    assert req.with_env({"MLBATCH_SHARD_COUNT": "20", "MLBATCH_SHARD_INDEX": "15"}).shard_count == 20
    assert req.with_env({}) == req
    with pytest.raises(BadInput, match="outside MLBATCH_SHARD_MAP"):
        req.with_env({"AWS_BATCH_JOB_ARRAY_INDEX": "3", "MLBATCH_SHARD_MAP": "3,7,9"})
    with pytest.raises(BadInput, match="MLBATCH_SHARD_INDEX"):
        req.with_env({"MLBATCH_SHARD_INDEX": "two"})


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
    X = features.to_matrix(features.generate(20, 99))
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


# --- checks ---------------------------------------------------------------------

def _fail(tmp_path, try_number: int, shard: int = 0, **params) -> StepRequest:
    return StepRequest("check.fail", params, output=str(tmp_path), shard_index=shard, shard_count=3,
                       try_number=try_number)


def test_fail_until_the_given_try(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        checks.fail(_fail(tmp_path, 2, fail_tries=2, message="boom"))
    assert checks.fail(_fail(tmp_path, 3, fail_tries=2)).counts == {"tries": 3}


def test_fail_only_chosen_shards_and_as_bad_input(tmp_path):
    assert checks.fail(_fail(tmp_path, 1, shard=0, fail_shards=[1])).counts == {"tries": 1}
    with pytest.raises(BadInput):
        checks.fail(_fail(tmp_path, 1, shard=1, fail_shards=[1], bad_input=True))


# --- python -m workers ----------------------------------------------------------

def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("MLBATCH_", "AWS_BATCH_"))}
    return subprocess.run([sys.executable, "-m", "workers", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**clean, "PYTHONPATH": str(ROOT), **(env or {})})


def _request(worker: str, output: Path, params: dict | None = None, **fields) -> str:
    return json.dumps({"worker": worker, "params": params or {}, "inputs": {}, "output": str(output),
                       **fields})


def test_cli_list():
    out = _cli("list")
    assert out.returncode == 0
    assert {line.split()[0] for line in out.stdout.splitlines()} == {
        "features.synthetic", "train.gbdt", "ensemble.average", "predict.batch", "drift.features",
        "check.noop", "check.sleep", "check.memory", "check.fail",
        "articles.corpus", "history.synthetic", "embed.text", "recommend.topk"}
    assert "metrics: auc, logloss, folds" in out.stdout  # what a gate may read


def test_cli_runs_and_commits_a_shard(tmp_path):
    out = _cli("run", "--request", _request("check.noop", tmp_path, shard_count=2))
    assert out.returncode == 0, out.stderr
    assert "start: check.noop shard 0/2 try 1" in out.stdout and "done: check.noop shard 0/2" in out.stdout
    assert artifacts.missing_shards(str(tmp_path), 2) == [1]


def test_cli_bad_input_exits_65_with_one_line(tmp_path):
    req = _request("check.fail", tmp_path, {"bad_input": True, "message": "column x\nis empty"})
    out = _cli("run", "--request", req)
    assert out.returncode == BAD_INPUT_EXIT_CODE
    assert out.stderr.splitlines() == ["mlbatch-bad-input: column x is empty (shard 0, try 1)"]
    assert artifacts.missing_shards(str(tmp_path), 1) == [0]


def test_cli_invalid_params_exit_65(tmp_path):
    out = _cli("run", "--request", _request("check.memory", tmp_path, {"mib": -1}))
    assert out.returncode == BAD_INPUT_EXIT_CODE
    assert out.stderr.startswith("mlbatch-bad-input: params of check.memory: 'mib'")


def test_cli_crash_exits_1_with_traceback(tmp_path):
    out = _cli("run", "--request", _request("check.fail", tmp_path, {"message": "kaboom"}))
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "RuntimeError: kaboom" in out.stderr
    assert "mlbatch-bad-input" not in out.stderr
    assert artifacts.missing_shards(str(tmp_path), 1) == [0]


def test_cli_try_number_from_env(tmp_path):
    req = _request("check.fail", tmp_path, {"fail_tries": 1})
    assert _cli("run", "--request", req, env={"MLBATCH_TRY_NUMBER": "1"}).returncode == 1
    out = _cli("run", "--request", req, env={"MLBATCH_TRY_NUMBER": "2"})
    assert out.returncode == 0, out.stderr
    assert artifacts.read_json(artifacts.shard_manifest_uri(str(tmp_path), 0))["try_number"] == 2


def test_cli_shard_index_from_env(tmp_path):
    req = _request("check.noop", tmp_path, shard_index=0, shard_count=3)
    out = _cli("run", "--request", req, env={"MLBATCH_SHARD_INDEX": "2", "AWS_BATCH_JOB_ARRAY_INDEX": "1"})
    assert out.returncode == 0, out.stderr
    assert artifacts.missing_shards(str(tmp_path), 3) == [0, 1]


def test_cli_array_index_through_shard_map(tmp_path):
    req = _request("check.noop", tmp_path, shard_count=10)
    out = _cli("run", "--request", req, env={"AWS_BATCH_JOB_ARRAY_INDEX": "1", "MLBATCH_SHARD_MAP": "3,7,9"})
    assert out.returncode == 0, out.stderr
    assert artifacts.missing_shards(str(tmp_path), 10) == [0, 1, 2, 3, 4, 5, 6, 8, 9]
    assert artifacts.read_json(artifacts.shard_manifest_uri(str(tmp_path), 7))["shard_index"] == 7


def test_cli_memory_really_grows_rss(tmp_path):
    out = _cli("run", "--request", _request("check.memory", tmp_path, {"mib": 160, "hold_seconds": 0}))
    assert out.returncode == 0, out.stderr
    assert "allocated 160/160 MiB" in out.stdout
    manifest = artifacts.read_json(artifacts.shard_manifest_uri(str(tmp_path), 0))
    assert manifest["metrics"]["peak_rss_mib"] >= 160


def test_entrypoint_does_not_import_numpy():
    """Thread limits set in the env must be in place before numpy/sklearn load: the
    entrypoint, request parsing and the runner must not import them themselves."""
    code = ("import sys, workers.__main__, workers.runner, workers.request, workers.checks; "
            "print(sorted({'numpy', 'pandas', 'sklearn'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
