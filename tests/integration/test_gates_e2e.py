"""Metric gates through real Airflow: a worse model fails as bad_input with one alert and never
becomes latest (also when it comes from the cache); a drift gate skips a retrain when nothing drifted."""
from __future__ import annotations

import pytest

from mlbatch.cli.report import collect
from tests.integration.airflow_run import asset_events, dags_test, migrate_db, write_batch
from tests.integration.slack_server import slack_connection_env
from workers import artifacts

pytestmark = pytest.mark.slow
CONN = "slack_gate_alerts"
GOOD_MODEL = "{max_iter: 20}"  # out-of-fold AUC about 0.79 on these 2000 rows
BAD_MODEL = "{max_iter: 1, max_depth: 1, learning_rate: 0.01}"  # about 0.63


@pytest.fixture(scope="module", autouse=True)
def _db():
    migrate_db()


def _model_batch(tmp_path, name: str, train_params: str) -> None:
    write_batch(tmp_path, name, f"""
        alerts: {{slack: {CONN}}}
        defaults: {{retries: 2, retry_delay: 1s}}
        steps:
          features: {{run: features.synthetic, params: {{rows: 2000}}}}
          train: {{run: train.gbdt, needs: [features], shards: 2, params: {train_params}}}
          ensemble:
            run: ensemble.average
            needs: [train]
            gate: {{metric: auc, min: 0.70}}
          score: {{run: predict.batch, needs: [ensemble, features]}}
    """)


def _steps(name):
    return {row.step: (row.state, row.try_number) for row in collect(name).steps}


def _latest(root, name, step):
    return artifacts.read_json(artifacts.latest_pointer_uri(root, name, step))


def test_a_model_below_its_gate_fails_once_alerts_once_and_never_becomes_latest(tmp_path, slack, monkeypatch):
    import os

    root, name = os.environ["MLBATCH_ARTIFACTS"], "gate_model"
    env = slack_connection_env(CONN, slack.url())
    _model_batch(tmp_path, name, GOOD_MODEL)
    first = dags_test(tmp_path, name, env=env)
    assert first.returncode == 0, first.output[-3000:]
    good = _latest(root, name, "ensemble")
    assert slack.posts == []
    [published] = asset_events(name, "ensemble")
    assert published["uri"] == good["uri"] and published["metrics"]["auc"] >= 0.70 and not published["cache_hit"]

    _model_batch(tmp_path, name, BAD_MODEL)  # a worse model: new train and ensemble keys
    second = dags_test(tmp_path, name, env=env)
    assert second.returncode != 0
    assert _steps(name) == {"features": ("success", 1), "train": ("success", 1), "ensemble": ("failed", 1),
                            "score": ("upstream_failed", 0)}
    [text] = slack.texts
    assert f"{name}.ensemble failed" in text and "`bad_input`" in text
    assert "auc 0.6" in text and "below the minimum 0.7" in text  # the metric, its value, the threshold
    assert "change the gate" in text  # the gate's own next step, not the generic bad-input one
    assert _latest(root, name, "ensemble") == good
    assert len(asset_events(name, "ensemble")) == 1  # no event for the gated model
    assert len(asset_events(name, "train")) == 2  # the new training output itself was published

    third = dags_test(tmp_path, name, env=env)  # the same inputs: the bad model comes from the cache
    assert third.returncode != 0
    assert "cache hit" in third.output and "gate failed: auc 0.6" in third.output
    assert _steps(name)["ensemble"] == ("failed", 1)
    assert len(slack.posts) == 2 and "below the minimum 0.7" in slack.texts[1]
    assert _latest(root, name, "ensemble") == good
    assert len(asset_events(name, "ensemble")) == 1
    assert len(asset_events(name, "train")) == 2  # a cache hit whose latest.json did not move: no event

    _model_batch(tmp_path, name, GOOD_MODEL)  # back to the good params: every step is a cache hit
    fourth = dags_test(tmp_path, name, env=env)
    assert fourth.returncode == 0, fourth.output[-3000:]
    *_, reverted = asset_events(name, "train")  # latest.json moved back to the first run's output: an event
    assert reverted["cache_hit"] and reverted["computed_by"] == published["computed_by"]
    assert len(asset_events(name, "ensemble")) == 1  # its latest.json never moved away
    assert len(slack.posts) == 2


def test_a_drift_gate_skips_the_retrain_unless_the_new_table_drifted(tmp_path, slack):
    from workers.tabular.features import generate

    shifted = generate(2000, seed=9)
    shifted["tenure_months"] = (shifted["tenure_months"] * 0.4).round().clip(lower=1)  # newer customers
    source = tmp_path / "shifted.parquet"
    shifted.to_parquet(source, index=False)
    name = "gate_drift"
    write_batch(tmp_path, name, f"""
        alerts: {{slack: {CONN}}}
        steps:
          training_table: {{run: features.synthetic, params: {{rows: 2000, seed: 7}}}}
          same: {{run: features.synthetic, params: {{rows: 2000, seed: 8}}}}
          moved: {{run: features.synthetic, params: {{source: {source}}}}}
          drift_same:
            run: drift.features
            needs: [training_table, same]
            params: {{reference: training_table}}
            gate: {{metric: drift, min: 0.1, on_fail: skip}}
          drift_moved:
            run: drift.features
            needs: [training_table, moved]
            params: {{reference: training_table}}
            gate: {{metric: drift, min: 0.1, on_fail: skip}}
          retrain_same: {{run: train.gbdt, needs: [same, drift_same], shards: 2, params: {{max_iter: 5}}}}
          retrain_moved: {{run: train.gbdt, needs: [moved, drift_moved], shards: 2, params: {{max_iter: 5}}}}
    """)
    result = dags_test(tmp_path, name, env=slack_connection_env(CONN, slack.url()))
    assert result.returncode == 0, result.output[-3000:]
    states = {step: state for step, (state, _) in _steps(name).items()}
    assert states == {"training_table": "success", "same": "success", "moved": "success",
                      "drift_same": "skipped", "retrain_same": "skipped",
                      "drift_moved": "success", "retrain_moved": "success"}
    assert "gate not met, skipping" in result.output
    assert "psi tenure_months" in result.output  # the worker's per-feature table in the task log
    [moved] = asset_events(name, "drift_moved")
    assert moved["metrics"]["drift"] >= 0.1 and moved["metrics"]["drift_feature"] == "tenure_months"
    assert asset_events(name, "drift_same") == []
    assert slack.posts == []  # a skip is not a failure
