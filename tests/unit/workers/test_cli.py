"""`python -m workers` and the check workers it runs: exit codes, shard commits, try numbers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workers import artifacts, checks
from workers.errors import BAD_INPUT_EXIT_CODE, BadInput
from workers.request import StepRequest

ROOT = Path(__file__).resolve().parents[3]




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
    listed = {line.split()[0] for line in out.stdout.splitlines()}
    assert listed - {"quality.nulls"} == {  # and the example worker package's, where it is installed
        "features.synthetic", "train.gbdt", "ensemble.average", "predict.batch", "drift.features",
        "check.noop", "check.sleep", "check.memory", "check.fail",
        "articles.corpus", "history.synthetic", "embed.text", "recommend.topk",
        "table.load", "train.mlp", "ensemble.stack", "python.call"}
    assert "metrics (binary: auc, logloss, folds; multiclass: auc, logloss, folds; regression: rmse, mae, folds)" in out.stdout  # what a gate may read


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
