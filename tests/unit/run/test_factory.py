"""The factory turns a spec into the right Airflow DAG."""
from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest

from mlbatch.run.factory import TIMEOUT_GRACE, build_dag
from mlbatch.spec.models import ShardsFrom

SPEC = """
    dag_id: factory_check
    description: Checks the factory
    schedule: "0 3 * * *"
    owner: ml-platform
    tags: [churn]
    defaults:
      resources: {vcpu: 2, memory: 1Gi}
      retries: 3
      retry_delay: 30s
      timeout: 10m
    steps:
      features:
        run: features.synthetic
        params: {rows: 1000}
      train:
        run: train.gbdt
        needs: [features]
        shards: 3
        retries: 1
        timeout: 1h
      ensemble: {run: ensemble.average, needs: [train]}
      score:
        run: predict.batch
        needs: [ensemble, features]
        shards: {per: 500, of: features.rows, max: 8}
"""


@pytest.fixture
def dag(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "factory_check.yaml").write_text(textwrap.dedent(SPEC))
    return build_dag(str(tmp_path / "loader.py"), "specs/factory_check.yaml")


def test_dag_level_settings(dag):
    assert dag.dag_id == "factory_check"
    assert dag.description == "Checks the factory"
    assert "Checks the factory" in dag.doc_md
    assert set(dag.tags) == {"mlbatch", "churn"}
    assert dag.max_active_runs == 1
    assert dag.catchup is False


def test_one_task_per_step_with_dependencies(dag):
    assert sorted(dag.task_ids) == ["ensemble", "features", "score", "train"]
    assert dag.get_task("train").upstream_task_ids == {"features"}
    assert dag.get_task("score").upstream_task_ids == {"ensemble", "features"}
    assert dag.get_task("features").downstream_task_ids == {"train", "score"}


def test_retries_timeouts_owner_and_pool(dag):
    features, train = dag.get_task("features"), dag.get_task("train")
    assert features.retries == 3 and train.retries == 1
    assert features.retry_delay == timedelta(seconds=30)
    assert features.execution_timeout == timedelta(minutes=10) + TIMEOUT_GRACE
    assert train.execution_timeout == timedelta(hours=1) + TIMEOUT_GRACE
    assert features.owner == "ml-platform"
    assert features.pool == "mlbatch_local"


def test_steps_carry_resources_and_shards(dag):
    train, score = dag.get_task("train").step, dag.get_task("score").step
    assert (train.vcpu, train.memory_mib, train.shards) == (2.0, 1024, 3)
    assert score.shards == ShardsFrom(per=500, step="features", count="rows", max=8)


def test_alerts_and_retry_backoff_are_wired(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "wired.yaml").write_text(textwrap.dedent("""
        alerts: {slack: slack_ml, on: [failure, retry, success]}
        defaults: {retry_backoff: true, max_retry_delay: 10m}
        steps:
          only: {run: check.noop}
    """))
    dag = build_dag(str(tmp_path / "loader.py"), "specs/wired.yaml")
    task = dag.get_task("only")
    assert task.retry_exponential_backoff == 2.0
    assert task.max_retry_delay == timedelta(minutes=10)
    assert task.record_run is True
    for callbacks in (task.on_failure_callback, task.on_retry_callback, dag.on_success_callback):
        assert callbacks  # Airflow keeps callbacks as lists
    failure = task.on_failure_callback[0] if isinstance(task.on_failure_callback, list) else task.on_failure_callback
    assert failure.__self__.conn_id == "slack_ml"


def test_no_alert_callbacks_without_a_slack_connection(dag):
    task = dag.get_task("features")
    assert not task.on_failure_callback and not task.on_retry_callback
    assert not dag.on_success_callback and task.record_run is False
