"""A Python DAG with `@step` functions through real Airflow on the local backend: mixed with plain
`@task`s and scheduled on an asset a YAML batch publishes; sharded, cached, and a miss when the
function's module changes."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from mlbatch.cli.report import collect
from tests.integration.airflow_run import dags_test, migrate_db, write_batch
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


def test_a_python_dag_mixes_plain_tasks_steps_and_a_yaml_batchs_asset_then_caches(tmp_path: Path) -> None:
    write_batch(tmp_path, "sdk_source", """
        steps:
          features: {run: features.synthetic, params: {rows: 40}}
    """)
    (tmp_path / "team_steps.py").write_text(STEPS)
    tmp_path.chmod(0o755)  # the worker imports team_steps from here (as root, workers run as another uid)
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
