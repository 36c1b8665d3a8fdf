"""The words of an alert: what failed, why, and what to do next. Pure functions, no Airflow."""
from __future__ import annotations

from dataclasses import dataclass, field

NEXT_STEP = {
    "bad_input": "Fix the input named in the reason, then clear the task: retrying the same input cannot help.",
    "oom": "Raise resources.memory of this step, or add on_oom: {grow: 2.0, max: 16Gi} to retry with more.",
    "timeout": "Raise the step's timeout or add shards to split the work; check the last log lines for a hang.",
    "infrastructure": "Usually transient (capacity, spot reclaim, lost host): clear the task; if it repeats, "
                      "check the compute environment.",
    "code_error": "A bug or an unexpected exception in the worker: read the traceback in the log, fix, "
                  "then clear the task.",
}


@dataclass(frozen=True)
class StepAlert:
    dag_id: str
    step: str
    run_id: str
    try_number: int
    max_tries: int
    failure: str
    reason: str
    stderr_tail: tuple[str, ...] = field(default_factory=tuple)
    log_url: str | None = None


def failure_text(alert: StepAlert, *, retrying: bool = False) -> str:
    """A Slack message (mrkdwn) for a step try that failed: finally, or with a retry to come."""
    icon, verdict = (":warning:", "failed, retrying") if retrying else (":red_circle:", "failed")
    tries = f"try {alert.try_number} of {alert.max_tries}"
    if not retrying and alert.try_number < alert.max_tries:
        tries += f"; not retried: a retry cannot fix {alert.failure}"
    lines = [
        f"{icon} *{alert.dag_id}.{alert.step} {verdict}* ({tries})",
        f"*Class:* `{alert.failure}` - {alert.reason}",
        f"*Run:* `{alert.run_id}`",
    ]
    if not retrying:
        lines.append(f"*Next step:* {NEXT_STEP.get(alert.failure, NEXT_STEP['code_error'])}")
    if alert.stderr_tail:
        tail = "\n".join(line[:300] for line in alert.stderr_tail[-5:])
        lines.append(f"*Last stderr lines:*\n```{tail}```")
    if alert.log_url:
        lines.append(f"<{alert.log_url}|Open the task log>")
    return "\n".join(lines)
