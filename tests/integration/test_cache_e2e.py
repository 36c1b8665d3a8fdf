"""Cached step outputs end to end through real Airflow (`airflow dags test`) with the local backend."""
from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from mlbatch.cli.report import collect
from tests.integration.airflow_run import AIRFLOW, PROJECT, airflow, dags_test, migrate_db, write_batch

pytestmark = pytest.mark.slow

WORKER_START = re.compile(r"mlbatch-worker start: (\S+) shard (\d+)/(\d+) try \d+ -> (\S+)")

# The example churn_training batch, made small enough to run in seconds.
CHURN = """
    defaults: {{retries: 0, resources: {{vcpu: 1, memory: 1Gi}}}}
    steps:
      features:
        run: features.synthetic
        params: {{rows: 3000, seed: 7}}
      train:
        run: train.gbdt
        needs: [features]
        shards: 2
        params: {{max_iter: 20, learning_rate: 0.1}}
      ensemble:
        run: ensemble.average
        needs: [train]
      score:
        run: predict.batch
        needs: [ensemble, features]
        shards: {{per: 1500, of: features.rows, max: 4}}
        params: {{threshold: {threshold}}}
"""


@pytest.fixture(scope="module", autouse=True)
def _db():
    migrate_db()


@pytest.fixture
def artifacts_root(tmp_path):
    """A store of its own per test, so that no test sees another's cached keys."""
    root = tmp_path / "artifacts"
    root.mkdir()
    return root


def run(dags: Path, dag_id: str, root: Path, **env: str):
    result = dags_test(dags, dag_id, env={"MLBATCH_ARTIFACTS": str(root), "MLBATCH_LOCAL_VCPU": "4", **env})
    assert result.returncode == 0, result.output[-5000:]
    return result


def worker_starts(output: str) -> list[tuple[str, int]]:
    """(worker, shard) of every worker launched, from the `mlbatch-worker start` lines."""
    return [(m.group(1), int(m.group(2))) for m in WORKER_START.finditer(output)]


def summaries(dag_id: str) -> dict[str, dict]:
    report = collect(dag_id)
    assert [row.state for row in report.steps] == ["success"] * len(report.steps)
    return {row.step: row.summary for row in report.steps}


def file_stamps(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def without_cache_fields(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "cache_hit"}


def test_second_run_is_all_cache_hits_and_rewrites_nothing(tmp_path, artifacts_root):
    write_batch(tmp_path, "cache_twice", CHURN.format(threshold=0.5))
    first = run(tmp_path, "cache_twice", artifacts_root)
    computed = summaries("cache_twice")
    assert Counter(w for w, _ in worker_starts(first.output)) == {
        "features.synthetic": 1, "train.gbdt": 2, "ensemble.average": 1, "predict.batch": 2}
    assert not any(s["cache_hit"] for s in computed.values())
    stamps = file_stamps(artifacts_root)
    time.sleep(0.05)  # a rewrite would show in the nanosecond mtimes

    second = run(tmp_path, "cache_twice", artifacts_root)
    hits = summaries("cache_twice")
    assert worker_starts(second.output) == []
    for step, summary in hits.items():
        assert summary["cache_hit"] is True
        assert f"cache hit {summary['key']} (computed by run {computed[step]['computed_by']} at " in second.output
        # downstream steps and shard sizing see exactly what the computing run reported
        assert without_cache_fields(summary) == without_cache_fields(computed[step])
    assert file_stamps(artifacts_root) == stamps

    # each output lives under its key: {root}/{dag_id}/{step}/{key}
    for step, summary in computed.items():
        assert summary["uri"] == str(artifacts_root / "cache_twice" / step / summary["key"])


def test_a_changed_param_of_the_last_step_recomputes_only_that_step(tmp_path, artifacts_root):
    write_batch(tmp_path, "cache_param", CHURN.format(threshold=0.5))
    run(tmp_path, "cache_param", artifacts_root)
    before = summaries("cache_param")

    write_batch(tmp_path, "cache_param", CHURN.format(threshold=0.9))
    changed = run(tmp_path, "cache_param", artifacts_root)
    after = summaries("cache_param")
    assert Counter(w for w, _ in worker_starts(changed.output)) == {"predict.batch": 2}
    assert {step for step, s in after.items() if not s["cache_hit"]} == {"score"}
    assert after["score"]["key"] != before["score"]["key"]
    assert after["score"]["counts"]["flagged"] < before["score"]["counts"]["flagged"]
    # both outputs stay: runs with different params never clobber each other
    assert Path(before["score"]["uri"], "manifest.json").exists()
    assert Path(after["score"]["uri"], "manifest.json").exists()


def test_refresh_recomputes_and_overwrites(tmp_path, artifacts_root):
    write_batch(tmp_path, "cache_refresh", """
        defaults: {retries: 0}
        steps:
          first:
            run: check.noop
          second:
            run: check.noop
            needs: [first]
            cache: false
    """)
    run(tmp_path, "cache_refresh", artifacts_root)
    first_run = summaries("cache_refresh")

    again = run(tmp_path, "cache_refresh", artifacts_root)
    second_run = summaries("cache_refresh")
    assert worker_starts(again.output) == [("check.noop", 0)]  # `cache: false` always runs
    assert second_run["first"]["cache_hit"] and not second_run["second"]["cache_hit"]
    assert second_run["second"]["key"] != first_run["second"]["key"]

    refreshed = run(tmp_path, "cache_refresh", artifacts_root, MLBATCH_CACHE="refresh")
    third_run = summaries("cache_refresh")
    assert worker_starts(refreshed.output) == [("check.noop", 0), ("check.noop", 0)]
    assert third_run["first"]["key"] == first_run["first"]["key"]  # same key, overwritten
    assert not third_run["first"]["cache_hit"]
    assert third_run["first"]["computed_by"] != first_run["first"]["computed_by"]

    by_conf = airflow(tmp_path, "dags", "test", "cache_refresh", "--conf", '{"cache": "refresh"}',
                      env={"MLBATCH_ARTIFACTS": str(artifacts_root)})
    assert by_conf.returncode == 0, (by_conf.stdout + by_conf.stderr)[-3000:]
    assert worker_starts(by_conf.stdout + by_conf.stderr) == [("check.noop", 0), ("check.noop", 0)]


def _kill_shard_when_running(step_output: str, shard: int, deadline_s: float = 120) -> None:
    """SIGKILL the worker of one shard (found by its command line and shard env) a second into its work."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if "workers run" not in cmdline or step_output not in cmdline:
                continue
            try:
                if proc.environ().get("MLBATCH_SHARD_INDEX") != str(shard):
                    continue
                time.sleep(1.0)
                proc.kill()
                return
            except psutil.Error:
                continue
        time.sleep(0.05)
    raise AssertionError(f"no worker of shard {shard} under {step_output} started")


KILL_SPEC = """
    defaults: {retries: 0, resources: {vcpu: 1, memory: 1Gi}}
    steps:
      features:
        run: features.synthetic
        params: {rows: 3000, seed: 7}
      nap:
        run: check.sleep
        needs: [features]
        shards: 3
        params: {seconds: 4}
      train:
        run: train.gbdt
        needs: [features, nap]
        shards: 2
        params: {max_iter: 20}
      ensemble:
        run: ensemble.average
        needs: [train]
"""


def test_a_worker_killed_mid_run_leaves_only_its_work_to_redo(tmp_path, artifacts_root):
    write_batch(tmp_path, "cache_kill", KILL_SPEC)
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path), "MLBATCH_ARTIFACTS": str(artifacts_root),
           "MLBATCH_LOCAL_VCPU": "4"}
    proc = subprocess.Popen([AIRFLOW, "dags", "test", "cache_kill"], env=env, cwd=PROJECT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _kill_shard_when_running(str(artifacts_root / "cache_kill" / "nap"), shard=1)
        killed_output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, killed_output[-3000:]
    states = {row.step: row.state for row in collect("cache_kill").steps}
    assert states["features"] == "success" and states["nap"] == "failed"
    assert Counter(worker_starts(killed_output)) == {
        ("features.synthetic", 0): 1, ("check.sleep", 0): 1, ("check.sleep", 1): 1, ("check.sleep", 2): 1}

    rerun = run(tmp_path, "cache_kill", artifacts_root)
    assert Counter(worker_starts(rerun.output)) == {
        ("check.sleep", 1): 1, ("train.gbdt", 0): 1, ("train.gbdt", 1): 1, ("ensemble.average", 0): 1}
    resumed = summaries("cache_kill")
    assert resumed["features"]["cache_hit"] and resumed["nap"]["shards_run"] == [1]

    clean_root = tmp_path / "clean"
    run(tmp_path, "cache_kill", clean_root)
    clean = summaries("cache_kill")
    assert not any(s["cache_hit"] for s in clean.values())
    for step in ("features", "nap", "train", "ensemble"):
        assert resumed[step]["key"] == clean[step]["key"]
        assert resumed[step]["counts"] == clean[step]["counts"]
        assert resumed[step]["metrics"] == clean[step]["metrics"]
    import pandas as pd

    for shard in range(2):
        oof = [pd.read_parquet(Path(s["uri"], f"shard-{shard:05d}", "oof.parquet")) for s in (resumed["train"], clean["train"])]
        pd.testing.assert_frame_equal(*oof)


def _private_airflow_home(tmp_path: Path) -> Path:
    """A copy of the migrated metadata DB: two `airflow dags test` at once on one SQLite file lock each other out.

    Copied through SQLite's backup API, never as a file: closing a plain file handle on the DB drops
    every lock this process's own connections hold on it (POSIX), and the next `airflow` process to
    close the DB then deletes its write-ahead log from under them ("database disk image is malformed").
    """
    home = tmp_path / "airflow_home_2"
    home.mkdir()
    with contextlib.closing(sqlite3.connect(Path(os.environ["AIRFLOW_HOME"]) / "airflow.db")) as source, \
            contextlib.closing(sqlite3.connect(home / "airflow.db")) as copy:
        source.backup(copy)
    return home


def test_two_concurrent_runs_compute_each_key_once(tmp_path, artifacts_root):
    write_batch(tmp_path, "cache_concurrent", """
        defaults: {retries: 0, resources: {vcpu: 1, memory: 1Gi}}
        steps:
          nap:
            run: check.sleep
            shards: 2
            params: {seconds: 4}
          features:
            run: features.synthetic
            needs: [nap]
            params: {rows: 3000, seed: 7}
          train:
            run: train.gbdt
            needs: [features]
            shards: 2
            params: {max_iter: 20}
    """)
    base_env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path), "MLBATCH_ARTIFACTS": str(artifacts_root),
                "MLBATCH_LOCAL_VCPU": "4"}
    envs = [base_env, {**base_env, "AIRFLOW_HOME": str(_private_airflow_home(tmp_path))}]
    procs = [subprocess.Popen([AIRFLOW, "dags", "test", "cache_concurrent"], env=env, cwd=PROJECT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for env in envs]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output[-3000:]
    starts = Counter(worker_starts(outputs[0]) + worker_starts(outputs[1]))
    assert starts == {("check.sleep", 0): 1, ("check.sleep", 1): 1, ("features.synthetic", 0): 1,
                      ("train.gbdt", 0): 1, ("train.gbdt", 1): 1}
    # the runs overlapped on the 4 s nap: one waited for the other's lock, then reused its output
    assert any("waiting for run" in output for output in outputs)
    hit_keys = {key for output in outputs for key in re.findall(r"cache hit ([0-9a-f]+) ", output)}
    assert len(hit_keys) == 3  # one per step, in whichever run came second
