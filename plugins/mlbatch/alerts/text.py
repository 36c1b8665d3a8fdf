"""The words of an alert: what failed, why, and what to do next. Pure functions, no Airflow."""
from __future__ import annotations

from dataclasses import dataclass, field

from mlbatch.alerts.mrkdwn import code, code_block, escape

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
    next_step: str | None = None  # replaces the class's usual next step (e.g. for a metric gate)


def failure_text(alert: StepAlert, *, retrying: bool = False) -> str:
    """A Slack message (mrkdwn) for a step try that failed: finally, or with a retry to come."""
    icon, verdict = (":warning:", "failed, retrying") if retrying else (":red_circle:", "failed")
    tries = f"try {alert.try_number} of {alert.max_tries}"
    if not retrying and alert.try_number < alert.max_tries:
        tries += f"; not retried: a retry cannot fix {alert.failure}"
    lines = [
        f"{icon} *{escape(alert.dag_id)}.{escape(alert.step)} {verdict}* ({tries})",
        f"*Class:* {code(alert.failure)} - {escape(alert.reason)}",
        f"*Run:* {code(alert.run_id)}",
    ]
    if not retrying:
        lines.append(f"*Next step:* {escape(alert.next_step or NEXT_STEP.get(alert.failure, NEXT_STEP['code_error']))}")
    if alert.stderr_tail:
        tail = "\n".join(line[:300] for line in alert.stderr_tail[-5:])
        lines.append(f"*Last stderr lines:*\n{code_block(tail)}")
    if alert.log_url:
        lines.append(f"<{escape(alert.log_url).replace('|', '%7C')}|Open the task log>")
    return "\n".join(lines)


def success_text(dag_id: str, run_id: str, steps: list[dict]) -> str:
    """A run digest (mrkdwn): each step's duration, cache hit and key metrics."""
    lines = [f":large_green_circle: *{escape(dag_id)} succeeded* - run {code(run_id)}"]
    for step in steps:
        cached = ", cache hit" if step.get("cache_hit") else ""
        metrics = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in (step.get("metrics") or {}).items())
        lines.append(f"- {code(str(step['step']))} {step.get('duration_s', 0):.1f} s{cached}"
                     + (f" - {escape(metrics)}" if metrics else ""))
    if not steps:
        lines.append("(no step records found for this run)")
    return "\n".join(lines)
