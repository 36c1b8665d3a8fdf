"""A Python DAG with `@step` functions through real Airflow on the local backend: mixed with plain
`@task`s and scheduled on an asset a YAML batch publishes; sharded, cached, and a miss when the
function's module changes; a gate on the metrics a function reports keeps a worse output from latest."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from mlbatch.cli.report import collect
from tests.integration.airflow_run import asset_events, dags_test, migrate_db, write_batch
from workers import artifacts
from workers.python_call import read_result

pytestmark = pytest.mark.slow

STEPS = '''
from mlbatch.sdk import step


@step(resources={"memory": "512Mi", "vcpu": 1}, retries=1)
def make_table(rows: int, scale: float = 1.0) -> dict:
    return {"values": [i * scale for i in range(rows)]}


@step(shards=2, timeout="5m")
def total(table: dict, shard=None) -> dict:
    mine = table["values"][shard.index::shard.count]
    return {"shard": shard.index, "of": shard.count, "sum": sum(mine)}
'''

DAG = '''
from airflow.sdk import DAG, task

from mlbatch.sdk import output_of, result
from team_steps import make_table, total

FEATURES = output_of("sdk_source.features")

with DAG("sdk_mix", schedule=[FEATURES], tags=["mlbatch"]) as dag:
    @task(inlets=[FEATURES])
    def rows_published(*, inlet_events=None) -> int:
        return inlet_events[FEATURES][-1].extra["counts"]["rows"]

    sums = total(make_table(rows_published(), scale=2.0))

    @task
    def grand_total(summary: dict) -> float:
        value = sum(part["sum"] for part in result(summary))
        print(f"grand total {value}")
        return value

    grand_total(sums)
'''


@pytest.fixture(scope="module", autouse=True)
def _db() -> None:
    migrate_db()


def _latest(dag_id: str, step: str) -> str:
    root = os.environ["MLBATCH_ARTIFACTS"]
    return artifacts.read_json(artifacts.latest_pointer_uri(root, dag_id, step))["uri"]


def _readable_by_workers(code: Path) -> None:
    """Tests run as root run each local worker as another uid, which must list the function's folder."""
    code.chmod(0o755)


def test_a_python_dag_mixes_plain_tasks_steps_and_a_yaml_batchs_asset_then_caches(tmp_path: Path) -> None:
    _readable_by_workers(tmp_path)
    write_batch(tmp_path, "sdk_source", """
        steps:
          features: {run: features.synthetic, params: {rows: 40}}
    """)
    (tmp_path / "team_steps.py").write_text(STEPS)
    (tmp_path / "sdk_mix.py").write_text(textwrap.dedent(DAG))
    source = dags_test(tmp_path, "sdk_source")
    assert source.returncode == 0, source.output[-3000:]

    first = dags_test(tmp_path, "sdk_mix")
    assert first.returncode == 0, first.output[-5000:]
    assert "grand total 1560.0" in first.output  # 2 * (0 + 1 + ... + 39), from the shards' results
    assert read_result(_latest("sdk_mix", "total")) == [{"shard": 0, "of": 2, "sum": 760.0},
                                                        {"shard": 1, "of": 2, "sum": 800.0}]
    manifest = artifacts.read_step_manifest(_latest("sdk_mix", "total"))
    assert manifest["shard_count"] == 2 and manifest["shards"][0]["worker"] == "python.call"
    assert "+team_steps:" in manifest["cache"]["code_version"]  # the function's own module is in the key
    steps = {row.step: row.state for row in collect("sdk_mix").steps}
    assert steps == {"rows_published": "success", "make_table": "success", "total": "success",
                     "grand_total": "success"}

    second = dags_test(tmp_path, "sdk_mix")
    assert second.returncode == 0, second.output[-5000:]
    assert second.output.count("cache hit") >= 2, second.output[-5000:]
    assert _latest("sdk_mix", "total") == manifest["step_uri"]

    (tmp_path / "team_steps.py").write_text(STEPS.replace('"sum": sum(mine)}', '"sum": sum(mine), "v": 2}'))
    third = dags_test(tmp_path, "sdk_mix")
    assert third.returncode == 0, third.output[-5000:]
    assert _latest("sdk_mix", "total") != manifest["step_uri"]  # a changed function is a miss
    assert read_result(_latest("sdk_mix", "total"))[1] == {"shard": 1, "of": 2, "sum": 800.0, "v": 2}


GATED_STEPS = '''
from mlbatch.sdk import step


@step(shards=2, gate={"metric": "auc", "min": 0.7})
def evaluate(quality: float, shard=None) -> dict:
    shard.metric("auc", quality + shard.index / 10)  # the step's auc: the mean over both shards
    return {"shard": shard.index}
'''

GATED_DAG = '''
from airflow.sdk import DAG, task

from gated_steps import evaluate

with DAG("sdk_gate", schedule=None, tags=["mlbatch"]) as dag:
    @task
    def report(summary: dict) -> None:
        print("auc", summary["metrics"]["auc"])

    report(evaluate(QUALITY))
'''


def test_a_gate_on_a_steps_own_metrics_passes_or_keeps_the_output_from_becoming_latest(tmp_path: Path) -> None:
    _readable_by_workers(tmp_path)
    (tmp_path / "gated_steps.py").write_text(GATED_STEPS)
    (tmp_path / "sdk_gate.py").write_text(GATED_DAG.replace("QUALITY", "0.8"))
    good = dags_test(tmp_path, "sdk_gate")
    assert good.returncode == 0, good.output[-5000:]
    assert "gate passed: auc = 0.85" in good.output
    passed = _latest("sdk_gate", "evaluate")
    assert artifacts.read_step_manifest(passed)["metrics"] == {"auc": pytest.approx(0.85)}
    assert len(asset_events("sdk_gate", "evaluate")) == 1

    (tmp_path / "sdk_gate.py").write_text(GATED_DAG.replace("QUALITY", "0.5"))  # a worse output: mean 0.55
    worse = dags_test(tmp_path, "sdk_gate")
    assert worse.returncode != 0
    assert "gate failed: auc 0.55 is below the minimum 0.7" in worse.output
    assert {row.step: (row.state, row.try_number) for row in collect("sdk_gate").steps} == {
        "evaluate": ("failed", 1), "report": ("upstream_failed", 0)}  # bad_input: no retry
    assert _latest("sdk_gate", "evaluate") == passed  # latest.json stays on the output that passed
    assert len(asset_events("sdk_gate", "evaluate")) == 1  # and no asset event for the worse one
