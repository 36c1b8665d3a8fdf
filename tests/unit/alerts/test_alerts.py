"""Alert texts, fail-soft delivery, secret redaction and OOM budget growth."""
from __future__ import annotations

import json
import socket

import pytest

from mlbatch.alerts.slack import SlackAlerts, step_alert
from mlbatch.alerts.text import NEXT_STEP, StepAlert, failure_text
from mlbatch.backends.failures import FailureClass
from mlbatch.run.oom_growth import current_budget, grown_budget, save_budget
from mlbatch.run.secrets import Redactor, secret_env_values
from mlbatch.run.step_errors import FailureDetails, StepFailed, StepFailedFast
from tests.integration.slack_server import RecordingWebhook, slack_connection_env

ALERT = StepAlert(dag_id="churn", step="train", run_id="manual__1", try_number=3, max_tries=3,
                  failure="oom", reason="peak 3.1 GiB > budget 2.0 GiB",
                  stderr_tail=("line one", "MemoryError"), log_url="http://ui/dags/churn/runs/x/tasks/train")


def test_failure_text_says_what_why_and_what_next():
    text = failure_text(ALERT)
    assert "churn.train failed" in text and "try 3 of 3" in text
    assert "`oom` - peak 3.1 GiB &gt; budget 2.0 GiB" in text  # Slack shows &gt; as >
    assert "manual__1" in text
    assert NEXT_STEP["oom"] in text
    assert "MemoryError" in text
    assert "<http://ui/dags/churn/runs/x/tasks/train|Open the task log>" in text


def test_retry_text_has_no_next_step():
    text = failure_text(ALERT, retrying=True)
    assert "failed, retrying" in text and "Next step" not in text


@pytest.mark.parametrize("failure", [c.value for c in FailureClass])
def test_every_class_has_a_next_step(failure):
    assert NEXT_STEP[failure]


class _TI:
    dag_id, task_id, run_id, try_number, max_tries = "churn", "train", "manual__1", 2, 2
    log_url = "http://ui/log"


def test_step_alert_reads_the_details_of_our_exceptions():
    details = FailureDetails(FailureClass.bad_input, "missing column 'tenure'", "0/1", ("bad",))
    for error in (StepFailed(details), StepFailedFast(details)):
        alert = step_alert({"ti": _TI(), "exception": error})
        assert (alert.failure, alert.reason, alert.stderr_tail) == ("bad_input", "missing column 'tenure'", ("bad",))
        assert (alert.try_number, alert.max_tries) == (2, 3)


def test_a_failure_with_its_own_next_step_says_that_one():
    details = FailureDetails(FailureClass.bad_input, "gate failed: auc 0.61 is below the minimum 0.8",
                             next_step="Change the gate to accept it.")
    text = failure_text(step_alert({"ti": _TI(), "exception": StepFailedFast(details)}))
    assert "*Next step:* Change the gate to accept it." in text and NEXT_STEP["bad_input"] not in text


def test_step_alert_of_any_other_exception_is_a_code_error():
    alert = step_alert({"ti": _TI(), "exception": KeyError("x")})
    assert alert.failure == "code_error" and "KeyError" in alert.reason


def test_alert_posts_to_the_webhook_of_the_connection(monkeypatch):
    with RecordingWebhook() as server:
        for name, value in slack_connection_env("slack_unit", server.url()).items():
            monkeypatch.setenv(name, value)
        SlackAlerts("slack_unit").post("hello")
    assert [post["body"]["text"] for post in server.posts] == ["hello"]
    assert server.posts[0]["path"] == "/services/T0000/B0000/s3cr3tW3bh00kP4th"


def test_alert_delivery_fails_soft(monkeypatch, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_DOWN", json.dumps(
        {"conn_type": "slackwebhook", "password": f"http://127.0.0.1:{port}/services/T/B/s3cr3t"}))
    SlackAlerts("slack_down").on_failure({"ti": _TI(), "exception": RuntimeError("boom")})  # must not raise
    assert "not sent" in caplog.text and "s3cr3t" not in caplog.text


def test_alerts_only_register_a_retry_callback_when_asked():
    assert set(SlackAlerts("c").callbacks()) == {"on_failure_callback", "on_execute_callback"}
    assert set(SlackAlerts("c", ["failure", "retry"]).callbacks()) == {
        "on_failure_callback", "on_execute_callback", "on_retry_callback"}


def test_secret_looking_env_values_are_found_and_redacted():
    env = {"AWS_SECRET_ACCESS_KEY": "abcdefghijkl", "SLACK_WEBHOOK_URL": "https://hooks/x/y/z",
           "GITHUB_TOKEN": "ghp_123456", "HOME": "/root", "DEBUG_TOKEN": "1"}
    found = secret_env_values(env)
    assert set(found) == {"AWS_SECRET_ACCESS_KEY", "SLACK_WEBHOOK_URL", "GITHUB_TOKEN"}
    redact = Redactor(found.values())
    assert redact("key=abcdefghijkl url=https://hooks/x/y/z home=/root") == "key=*** url=*** home=/root"


def test_oom_budget_grows_by_the_factor_up_to_the_max(tmp_path):
    assert grown_budget(256, 2.0, 1024) == 512
    assert grown_budget(768, 2.0, 1024) == 1024
    assert grown_budget(1024, 2.0, 1024) is None
    uri = str(tmp_path / "memory.json")
    assert current_budget(uri, 256) == 256
    save_budget(uri, 512, after_try=1)
    assert current_budget(uri, 256) == 512


def test_alerts_on_survives_yaml_reading_on_as_true(tmp_path):
    from mlbatch.spec.loader import load_spec

    spec_file = tmp_path / "digest.yaml"
    spec_file.write_text("alerts:\n  slack: slack_ml\n  on: [failure, retry, success]\nsteps:\n  a: {run: check.noop}\n")
    assert load_spec(spec_file).alerts.on == ["failure", "retry", "success"]


def test_success_digest_lists_steps_cache_hits_and_metrics():
    from mlbatch.alerts.text import success_text

    text = success_text("churn", "manual__1", [
        {"step": "features", "duration_s": 3.2, "cache_hit": True, "metrics": {}},
        {"step": "ensemble", "duration_s": 1.5, "cache_hit": False, "metrics": {"auc": 0.84281}},
    ])
    assert "churn succeeded" in text and "manual__1" in text
    assert "`features` 3.2 s, cache hit" in text
    assert "`ensemble` 1.5 s - auc=0.8428" in text


def test_a_missing_alert_connection_is_a_warning_before_the_step_runs(monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_MISSING", raising=False)
    SlackAlerts("slack_missing").check_connection({})  # must not raise
    assert "'slack_missing', which does not exist" in caplog.text
    caplog.clear()
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_MISSING", json.dumps({"conn_type": "slackwebhook", "password": "x"}))
    SlackAlerts("slack_missing").check_connection({})
    assert "does not exist" not in caplog.text
