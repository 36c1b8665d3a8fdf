"""What a step prints cannot ping a channel, forge a link or break out of a code block, and
passwords written into URLs and DSNs never reach a log line or an alert."""
from __future__ import annotations

import re

import pytest

from mlbatch.alerts.mrkdwn import code, code_block, escape
from mlbatch.alerts.slack import SlackAlerts
from mlbatch.alerts.text import StepAlert, failure_text, success_text
from mlbatch.run.secrets import Redactor, mask_inline_passwords
from tests.integration.slack_server import RecordingWebhook, slack_connection_env

HOSTILE = StepAlert(dag_id="churn", step="train", run_id="manual__`<!here>`", try_number=1, max_tries=1,
                    failure="code_error", reason="<!channel> see <https://evil.example|the fix> & more",
                    stderr_tail=("ok", "```", "<!everyone> *now*", "tail ``"), log_url="http://ui/x?a=1&b=2")


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```(.*?)```", text, flags=re.DOTALL)


def test_control_characters_are_escaped_as_slack_documents():
    assert escape("a & <b> c") == "a &amp; &lt;b&gt; c"
    text = failure_text(HOSTILE)
    assert "<!channel>" not in text and "<!here>" not in text and "<!everyone>" not in text
    assert "<https://evil.example|" not in text
    assert "&lt;!channel&gt; see &lt;https://evil.example|the fix&gt; &amp; more" in text
    assert "<http://ui/x?a=1&amp;b=2|Open the task log>" in text  # our own link stays a link


def test_a_code_block_holds_the_whole_stderr_tail():
    blocks = code_blocks(failure_text(HOSTILE))
    assert len(blocks) == 1 and "tail" in blocks[0] and "&lt;!everyone&gt; *now*" in blocks[0]
    assert "``" not in blocks[0].replace("\u200b", "X")  # no backtick run left to close the block
    for text in ("`", "``", "x```y", "````"):
        inner = code_block(text)[3:-3]
        assert "``" not in inner and not inner.startswith("`") and not inner.endswith("`")


def test_inline_code_cannot_be_closed_early():
    assert code("a`b").count("`") == 2
    assert "`<" not in success_text("d", "r`<!here>", [{"step": "s`", "duration_s": 1.0}])


@pytest.mark.parametrize("text, masked", [
    ("GET https://user:pa55word@host/x failed", "GET https://user:***@host/x failed"),
    ("postgresql+psycopg2://airflow:s3c@r3t@127.0.0.1:5432/airflow",
     "postgresql+psycopg2://airflow:***@127.0.0.1:5432/airflow"),
    ("redis://:t0ken@cache:6379/0", "redis://:***@cache:6379/0"),
    ("dbname=airflow user=airflow password=hunter22 host=db", "dbname=airflow user=airflow password=*** host=db"),
    ("PASSWORD='a b\\' c' host=db", "PASSWORD=*** host=db"),
    ("Server=db;Pwd=hunter22;", "Server=db;Pwd=***;"),
    ("see http://host:8080/path and mail me@example.com", "see http://host:8080/path and mail me@example.com"),
])
def test_the_redactor_masks_passwords_in_urls_and_dsns(text, masked):
    assert Redactor([])(text) == masked


def test_a_long_line_without_a_password_is_masked_in_linear_time():
    line = "a" * 200_000 + "://" + "b:" * 100_000
    assert mask_inline_passwords(line) == line


def test_an_alert_quoting_a_dsn_reaches_slack_masked(monkeypatch):
    with RecordingWebhook() as server:
        for name, value in slack_connection_env("slack_unit", server.url()).items():
            monkeypatch.setenv(name, value)
        SlackAlerts("slack_unit").post("could not connect to postgresql://airflow:pw-1234@db/airflow")
    assert [post["body"]["text"] for post in server.posts] == [
        "could not connect to postgresql://airflow:***@db/airflow"]
