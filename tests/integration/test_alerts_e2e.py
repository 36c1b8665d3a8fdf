"""Failure classes, retry policy by class and Slack alerts, end to end through Airflow."""
from __future__ import annotations

import socket

import pytest

from mlbatch.cli.report import collect
from tests.integration.airflow_run import dags_test, migrate_db, write_batch
from tests.integration.slack_server import slack_connection_env

pytestmark = pytest.mark.slow
CONN = "slack_test_alerts"


@pytest.fixture(scope="module", autouse=True)
def _db():
    migrate_db()


def _run(tmp_path, name, steps_yaml, env):
    write_batch(tmp_path, name, f"""
        alerts: {{slack: {CONN}}}
        defaults: {{retries: 2, retry_delay: 1s}}
        steps:
{steps_yaml}
    """)
    return dags_test(tmp_path, name, env=env)


def _steps(name):
    return {row.step: (row.state, row.try_number) for row in collect(name).steps}


def test_bad_input_sends_exactly_one_alert_without_retries(tmp_path, slack):
    result = _run(tmp_path, "alert_bad_input", """
          features:
            run: features.synthetic
            params: {source: /nonexistent/customers.csv}
    """, slack_connection_env(CONN, slack.url()))
    assert result.returncode != 0
    assert _steps("alert_bad_input")["features"] == ("failed", 1)
    [text] = slack.texts
    assert "alert_bad_input.features failed" in text
    assert "try 1 of 3" in text
    assert "`bad_input`" in text and "/nonexistent/customers.csv" in text
    assert "Fix the input" in text
    assert collect("alert_bad_input").run_id in text
    assert "/dags/alert_bad_input/runs/" in text  # link to the task log in the UI


def test_flaky_step_that_recovers_sends_no_alert(tmp_path, slack):
    result = _run(tmp_path, "alert_flaky", """
          flaky:
            run: check.fail
            params: {fail_tries: 1}
    """, slack_connection_env(CONN, slack.url()))
    assert result.returncode == 0, result.output[-3000:]
    assert _steps("alert_flaky")["flaky"] == ("success", 2)
    assert slack.posts == []


def test_always_failing_step_alerts_once_after_its_last_try(tmp_path, slack):
    result = _run(tmp_path, "alert_always", """
          broken:
            run: check.fail
            params: {message: division went wrong}
    """, slack_connection_env(CONN, slack.url()))
    assert result.returncode != 0
    assert _steps("alert_always")["broken"] == ("failed", 3)
    [text] = slack.texts
    assert "try 3 of 3" in text and "`code_error`" in text
    assert "division went wrong" in text
    assert "RuntimeError" in text  # the last stderr lines travel with the alert


def test_oom_step_grows_its_memory_and_succeeds_on_retry(tmp_path, slack):
    result = _run(tmp_path, "alert_oom_grow", """
          hog:
            run: check.memory
            params: {mib: 400, hold_seconds: 1}
            resources: {memory: 256Mi}
            on_oom: {grow: 2.0, max: 1Gi}
    """, slack_connection_env(CONN, slack.url()))
    assert result.returncode == 0, result.output[-3000:]
    assert _steps("alert_oom_grow")["hog"] == ("success", 2)
    assert "the next try gets 512 MiB" in result.output
    assert "memory budget 512 MiB (grown from 256 MiB" in result.output
    assert slack.posts == []


def test_oom_without_on_oom_fails_fast_with_one_alert(tmp_path, slack):
    result = _run(tmp_path, "alert_oom", """
          hog:
            run: check.memory
            params: {mib: 400, hold_seconds: 1}
            resources: {memory: 256Mi}
    """, slack_connection_env(CONN, slack.url()))
    assert result.returncode != 0
    assert _steps("alert_oom")["hog"] == ("failed", 1)
    [text] = slack.texts
    assert "`oom`" in text and "budget 256 MiB" in text and "resources.memory" in text


def test_slack_down_leaves_the_outcome_unchanged(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{dead_port}/services/T/B/s3cr3tW3bh00kP4th"
    result = _run(tmp_path, "alert_slack_down", """
          broken:
            run: check.fail
            params: {bad_input: true}
          fine:
            run: check.noop
    """, slack_connection_env(CONN, url))
    assert result.returncode != 0
    assert _steps("alert_slack_down") == {"broken": ("failed", 1), "fine": ("success", 1)}
    assert f"Slack alert through connection '{CONN}' not sent" in result.output
    assert "s3cr3tW3bh00kP4th" not in result.output


def test_secrets_never_reach_logs_alerts_or_xcom(tmp_path, slack):
    secrets = {"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY",
               "MLBATCH_API_TOKEN": "tok-9f8e7d6c5b4a39281706"}
    env = {**slack_connection_env(CONN, slack.url()), **secrets}
    result = _run(tmp_path, "alert_secrets", """
          leaky:
            run: check.fail
            params: {bad_input: true, print_env: [AWS_SECRET_ACCESS_KEY, MLBATCH_API_TOKEN]}
          after:
            run: check.noop
    """, env)
    assert result.returncode != 0
    assert "AWS_SECRET_ACCESS_KEY=***" in result.output  # the worker printed it; the log masked it
    everything = result.output + "\n".join(slack.texts) + repr(collect("alert_secrets").steps)
    for value in [*secrets.values(), "s3cr3tW3bh00kP4th"]:
        assert value not in everything
    assert len(slack.posts) == 1


def test_success_digest_when_asked_for(tmp_path, slack):
    write_batch(tmp_path, "alert_digest", f"""
        alerts: {{slack: {CONN}, on: [failure, success]}}
        steps:
          features: {{run: features.synthetic, params: {{rows: 2000}}}}
          train: {{run: train.gbdt, needs: [features], shards: 2, params: {{max_iter: 20}}}}
          ensemble: {{run: ensemble.average, needs: [train]}}
    """)
    result = dags_test(tmp_path, "alert_digest", env=slack_connection_env(CONN, slack.url()))
    assert result.returncode == 0, result.output[-3000:]
    [text] = slack.texts
    assert "alert_digest succeeded" in text and collect("alert_digest").run_id in text
    for step in ("features", "train", "ensemble"):
        assert f"`{step}`" in text
    assert "auc=" in text
