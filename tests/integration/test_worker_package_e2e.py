"""A worker of one's own package (examples/worker-package, installed into a folder of its own) linted and
run through real Airflow on the local backend: sharded, gated on its metric, cached."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlbatch.cli.report import collect
from mlbatch.spec.lint import lint_file
from tests.integration.airflow_run import dags_test, migrate_db, write_batch
from tests.worker_packages import example_installed
from workers import artifacts

pytestmark = pytest.mark.slow

BATCH = """
    steps:
      features: {run: features.synthetic, params: {rows: 400}}
      nulls:
        run: quality.nulls
        needs: [features]
        params: {columns: [tenure_months, monthly_charges]}
        gate: {metric: null_share, max: MAX}
      per_file:
        run: quality.nulls
        needs: [features]
        shards: 2
"""


@pytest.fixture(scope="module", autouse=True)
def _setup():
    with example_installed():  # here and in the Airflow processes the tests start
        migrate_db()
        yield


def test_a_package_worker_lints_runs_sharded_gates_and_caches_through_airflow(tmp_path):
    write_batch(tmp_path, "team_quality", BATCH.replace("MAX", "0.5"))
    assert [str(p) for p in lint_file(tmp_path / "specs" / "team_quality.yaml", cpu_count=64)] == []

    first = dags_test(tmp_path, "team_quality")
    assert first.returncode == 0, first.output[-3000:]
    steps = {row.step: row for row in collect("team_quality").steps}
    assert {name: row.state for name, row in steps.items()} == {"features": "success", "nulls": "success",
                                                                 "per_file": "success"}
    root = os.environ["MLBATCH_ARTIFACTS"]
    latest = artifacts.read_json(artifacts.latest_pointer_uri(root, "team_quality", "nulls"))
    manifest = artifacts.read_step_manifest(latest["uri"])
    assert manifest["metrics"]["rows"] == 400 and 0 <= manifest["metrics"]["null_share"] <= 0.5
    assert manifest["cache"]["code_version"].startswith("mlbatch_quality:")  # its own package's code
    per_file = artifacts.read_step_manifest(artifacts.read_json(
        artifacts.latest_pointer_uri(root, "team_quality", "per_file"))["uri"])
    assert per_file["counts"]["rows"] == 400 and per_file["shard_count"] == 2  # the one input file: shard 1 gets none

    second = dags_test(tmp_path, "team_quality")
    assert second.returncode == 0, second.output[-3000:]
    assert second.output.count("cache hit") >= 3, second.output[-3000:]


def test_a_typo_in_a_package_workers_params_is_caught_before_anything_runs(tmp_path):
    write_batch(tmp_path, "team_typo", BATCH.replace("MAX", "0.5").replace("columns:", "colums:"))
    [problem] = [p for p in lint_file(tmp_path / "specs" / "team_typo.yaml", cpu_count=64) if p.severity == "error"]
    assert "unknown param 'colums' for worker 'quality.nulls'" in str(problem) and "did you mean 'columns'" in str(problem)


def test_a_gate_on_the_packages_metric_stops_the_batch(tmp_path):
    write_batch(tmp_path, "team_gate", BATCH.replace("MAX", "-1"))
    result = dags_test(tmp_path, "team_gate")
    assert result.returncode != 0
    assert "null_share" in result.output and "above the maximum -1" in result.output
