"""Slack alerts through the Slack provider's webhook hook, as Airflow task callbacks.

Airflow calls on_failure_callback once, when a task finally fails (after its last retry, or
at once for a fail-fast class) and on_retry_callback for a try that will be retried: so
"exactly one alert per failed step, none for a retried try" is Airflow's own bookkeeping.
Alerts fail soft: whatever goes wrong with Slack is a warning in the log, never an error.
Imported at DAG parse time for batches with alerts: the words of an alert (alerts.text) load
only when one is sent.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from mlbatch.alerts.text import StepAlert

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_S = 10


def step_alert(context: dict[str, Any]) -> StepAlert:
    from mlbatch.alerts.text import StepAlert

    ti = context["ti"]
    error = context.get("exception")
    details = getattr(error, "details", None)
    next_step = getattr(details, "next_step", None)
    if details is not None:
        failure, reason, tail = details.failure.value, details.reason, details.stderr_tail
    elif type(error).__name__ == "AirflowTaskTimeout":
        failure, reason, tail = "timeout", "Airflow's execution_timeout stopped the task", ()
    else:
        failure, reason, tail = "code_error", f"{type(error).__name__}: {error}" if error else "unknown error", ()
    return StepAlert(
        dag_id=ti.dag_id, step=ti.task_id, run_id=ti.run_id, try_number=ti.try_number,
        max_tries=ti.max_tries + 1, failure=failure, reason=reason, stderr_tail=tuple(tail),
        log_url=getattr(ti, "log_url", None), next_step=next_step,
    )


class SlackAlerts:
    """Callbacks that post to the Slack webhook of an Airflow connection (the URL never leaves it)."""

    def __init__(self, conn_id: str, events: Iterable[str] = ("failure",)) -> None:
        self.conn_id = conn_id
        self.events = frozenset(events)

    def callbacks(self) -> dict[str, Any]:
        """Task arguments to pass to every step's operator."""
        hooks = {"on_failure_callback": self.on_failure, "on_execute_callback": self.check_connection}
        if "retry" in self.events:
            hooks["on_retry_callback"] = self.on_retry
        return hooks

    def dag_callbacks(self) -> dict[str, Any]:
        """DAG arguments: the success digest, when asked for."""
        return {"on_success_callback": self.on_dag_success} if "success" in self.events else {}

    def on_dag_success(self, context: dict[str, Any]) -> None:
        from mlbatch.alerts.text import success_text
        from mlbatch.run.paths import artifact_root
        from mlbatch.run.run_index import read_run

        run = context["dag_run"]
        self._safely(lambda: self.post(success_text(run.dag_id, run.run_id,
                                                    read_run(artifact_root(), run.dag_id, run.run_id))))

    def check_connection(self, context: dict[str, Any]) -> None:
        """Before a step runs: warn in its log when the alert connection does not exist.

        Done here and in `mlbatch lint`, not at DAG parse time, where a connection lookup
        would be a database or secrets-backend call on every parse.
        """
        from airflow.sdk import BaseHook

        try:
            BaseHook.get_connection(self.conn_id)
        except Exception:  # noqa: BLE001 - whatever the lookup raises, the step itself goes on
            log.warning("alerts.slack names Airflow connection %r, which does not exist: this batch's alerts "
                        "will be lost. Fix: airflow connections add %s --conn-type slackwebhook "
                        "--conn-password '<webhook URL>'", self.conn_id, self.conn_id)

    def on_failure(self, context: dict[str, Any]) -> None:
        from mlbatch.alerts.text import failure_text

        self._safely(lambda: self.post(failure_text(step_alert(context))))

    def on_retry(self, context: dict[str, Any]) -> None:
        from mlbatch.alerts.text import failure_text

        self._safely(lambda: self.post(failure_text(step_alert(context), retrying=True)))

    def post(self, text: str) -> None:
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook
        from airflow.sdk import BaseHook
        from airflow.sdk.log import mask_secret

        from mlbatch.run.secrets import mask_inline_passwords

        # The Slack client logs the full request URL, and a webhook URL is itself the secret;
        # connections from the environment are not always registered with the masker.
        connection = BaseHook.get_connection(self.conn_id)
        for value in (connection.password, connection.host):
            if value:
                mask_secret(value)
        # No client-side retries: the Slack client logs the full URL when it retries, and an
        # alert that cannot get through within the timeout is better reported than delayed.
        hook = SlackWebhookHook(slack_webhook_conn_id=self.conn_id, timeout=WEBHOOK_TIMEOUT_S, retry_handlers=[])
        hook.send_text(mask_inline_passwords(text))  # a reason or stderr line may quote a DSN
        log.info("Slack alert sent through connection %r", self.conn_id)

    def _safely(self, send) -> None:
        try:
            send()
        except Exception as error:  # noqa: BLE001 - an alert must never change the task's outcome
            # The error text of an HTTP client often holds the webhook URL (a secret): log its type only.
            log.warning("Slack alert through connection %r not sent: %s (details withheld: they may contain "
                        "the webhook URL)", self.conn_id, type(error).__name__)
