"""Batches end to end through real Airflow (`airflow dags test`) with the local backend."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from mlbatch.cli.report import collect, format_report
from tests.integration.airflow_run import dags_test, migrate_db, write_batch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _db():
    migrate_db()


def _states(dag_id: str) -> dict[str, tuple[str, int]]:
    return {row.step: (row.state, row.try_number) for row in collect(dag_id).steps}


def test_memory_hog_fails_with_oom_while_sibling_succeeds(tmp_path):
    write_batch(tmp_path, "e2e_oom", """
        defaults: {retries: 0, resources: {memory: 300Mi}}
        steps:
          hog:
            run: check.memory
            params: {mib: 900, hold_seconds: 5}
          sibling:
            run: check.sleep
            params: {seconds: 1}
    """)
    result = dags_test(tmp_path, "e2e_oom")
    assert result.returncode != 0
    states = _states("e2e_oom")
    assert states["hog"][0] == "failed"
    assert states["sibling"][0] == "success"
    assert "class: oom" in result.output
    assert "budget 300 MiB" in result.output or "budget 0.3 GiB" in result.output
    assert re.search(r"fix: shard 0/1: set resources.memory: \d+(Mi|(\.\d+)?Gi) in this step, or on_oom: ", result.output)
    # The run summary (`mlbatch report`) shows the failed step's peak against its budget and the fix under it.
    lines = format_report(collect("e2e_oom")).splitlines()
    hog = next(i for i, line in enumerate(lines) if line.startswith("  hog "))
    assert re.search(r"oom at shard 0/1: peak \d+ MiB of 300 MiB$", lines[hog]), lines[hog]
    assert re.match(r"    fix: shard 0/1: set resources.memory: \d+(Mi|(\.\d+)?Gi) in this step, or on_oom: ",
                    lines[hog + 1]), lines[hog + 1]


def test_bad_input_fails_once_without_retries(tmp_path):
    write_batch(tmp_path, "e2e_bad_input", """
        defaults: {retries: 3, retry_delay: 1s}
        steps:
          features:
            run: features.synthetic
            params: {source: /nonexistent/customers.csv}
    """)
    result = dags_test(tmp_path, "e2e_bad_input")
    assert result.returncode != 0
    assert _states("e2e_bad_input")["features"] == ("failed", 1)
    assert "class: bad_input" in result.output
    assert "/nonexistent/customers.csv" in result.output


def test_flaky_step_succeeds_on_retry(tmp_path):
    write_batch(tmp_path, "e2e_flaky", """
        defaults: {retries: 2, retry_delay: 1s}
        steps:
          flaky:
            run: check.fail
            params: {fail_tries: 1}
          after:
            run: check.noop
            needs: [flaky]
    """)
    result = dags_test(tmp_path, "e2e_flaky")
    assert result.returncode == 0, result.output[-3000:]
    states = _states("e2e_flaky")
    assert states["flaky"] == ("success", 2)
    assert states["after"] == ("success", 1)
    assert "class: code_error" in result.output


def test_failed_shard_is_the_only_one_rerun(tmp_path):
    write_batch(tmp_path, "e2e_shards", """
        defaults: {retries: 1, retry_delay: 1s}
        steps:
          fan:
            run: check.fail
            shards: 4
            params: {fail_tries: 1, fail_shards: [2]}
    """)
    result = dags_test(tmp_path, "e2e_shards")
    assert result.returncode == 0, result.output[-3000:]
    summary = collect("e2e_shards").steps[0].summary
    assert summary["shards_run"] == [2]
    manifest = json.loads(Path(summary["uri"], "manifest.json").read_text())
    tries = {shard["shard_index"]: shard["try_number"] for shard in manifest["shards"]}
    assert tries == {0: 1, 1: 1, 2: 2, 3: 1}


def test_timeout_kills_the_worker_and_fails_with_timeout(tmp_path):
    write_batch(tmp_path, "e2e_timeout", """
        defaults: {retries: 0, timeout: 3s}
        steps:
          slow:
            run: check.sleep
            params: {seconds: 120}
    """)
    result = dags_test(tmp_path, "e2e_timeout")
    assert result.returncode != 0
    assert _states("e2e_timeout")["slow"][0] == "failed"
    assert "class: timeout" in result.output


def test_example_churn_training_batch(tmp_path):
    project = Path(__file__).resolve().parents[2]
    result = dags_test(project / "dags", "churn_training")
    assert result.returncode == 0, result.output[-5000:]
    report = collect("churn_training")
    assert [row.state for row in report.steps] == ["success"] * 5
    by_step = {row.step: row.summary for row in report.steps}
    assert by_step["train"]["shard_count"] == by_step["train_mlp"]["shard_count"] == 5
    assert by_step["score"]["shard_count"] == 4  # 200000 rows, 50000 per shard
    assert 0.7 < by_step["ensemble"]["metrics"]["auc"] < 0.99
    assert by_step["score"]["counts"]["rows"] == by_step["features"]["counts"]["rows"] == 200000
    for summary in by_step.values():
        assert Path(summary["uri"], "manifest.json").exists()
        assert summary["uri"].startswith(os.environ["MLBATCH_ARTIFACTS"])
