"""What AWS Batch says about a finished job, as mlbatch failure classes. Pure: no AWS calls.

Batch reports an end in three places: the job's `statusReason` (timeouts, host loss,
our own terminate), the container's `reason` (OutOfMemoryError, CannotPullContainer...)
and the container's `exitCode` (the worker's own: 65 is bad input). Host loss is
retried inside Batch (see submission.retry_strategy); what reaches us here has used
up those attempts.
"""
from __future__ import annotations

from typing import Any, Sequence

from mlbatch.backends.aws.conventions import CANCEL_REASON, OOM_EXIT_CODE
from mlbatch.backends.failures import FailureClass, classify_exit, format_duration, format_mib
from mlbatch.backends.protocols import Progress

LIVE_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
WAITING_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE")
DONE_STATUSES = ("SUCCEEDED", "FAILED")
TIMEOUT_REASON = "Job attempt duration exceeded timeout"
_INFRASTRUCTURE_MARKERS = (
    "CannotPullContainer", "CannotStartContainer", "CannotInspectContainer", "CannotCreateContainer",
    "ResourceInitializationError", "TaskFailedToStart", "DockerTimeoutError", "capacity",
)


def job_duration_s(job: dict[str, Any]) -> float:
    started, stopped = job.get("startedAt"), job.get("stoppedAt")
    if not started or not stopped:
        return 0.0
    return max(0.0, (stopped - started) / 1000)


def classify_job(job: dict[str, Any], *, memory_mib: int, timeout_s: float | None,
                 log_tail: Sequence[str] = ()) -> tuple[FailureClass | None, str, int | None]:
    """(class, one-line reason, exit code) of a finished Batch job (or array child)."""
    if job.get("status") == "SUCCEEDED":
        return None, "", 0
    container = job.get("container") or {}
    exit_code = container.get("exitCode")
    container_reason = container.get("reason") or ""
    status_reason = job.get("statusReason") or ""
    both = f"{status_reason} {container_reason}"
    if status_reason.startswith(CANCEL_REASON):
        return FailureClass.infrastructure, status_reason, exit_code
    if TIMEOUT_REASON.lower() in status_reason.lower():
        limit = format_duration(timeout_s) if timeout_s else "its"
        return FailureClass.timeout, f"ran past its {limit} timeout (Batch: {status_reason})", exit_code
    if "OutOfMemoryError" in container_reason or exit_code == OOM_EXIT_CODE:
        said = container_reason or f"exit code {exit_code}"
        return FailureClass.oom, f"killed for memory over its budget {format_mib(memory_mib)} ({said})", exit_code
    if status_reason.startswith("Host EC2"):
        return FailureClass.infrastructure, f"host lost (spot reclaim or instance terminated): {status_reason}", exit_code
    if any(marker.lower() in both.lower() for marker in _INFRASTRUCTURE_MARKERS):
        return FailureClass.infrastructure, both.strip(), exit_code
    if exit_code is not None:
        failure, reason = classify_exit(exit_code, None, stderr_tail=log_tail, memory_mib=memory_mib)
        if failure is None:  # exit 0 yet FAILED: Batch gave up on it for its own reasons
            return FailureClass.infrastructure, f"FAILED with exit 0: {both.strip() or 'no reason given'}", exit_code
        return failure, reason, exit_code
    return FailureClass.infrastructure, f"ended FAILED without an exit code: {both.strip() or 'no reason given'}", None


def has_started(job: dict[str, Any]) -> bool:
    """True once the job (or, for an array, any child) got past the queue."""
    if job.get("status") not in WAITING_STATUSES:
        return True
    summary = (job.get("arrayProperties") or {}).get("statusSummary") or {}
    return any(summary.get(status, 0) for status in ("STARTING", "RUNNING", "SUCCEEDED", "FAILED"))


def progress(job: dict[str, Any] | None, *, now: float, start_deadline: float | None) -> Progress:
    """done, not_started (still queued past its start deadline), missing (Batch no longer knows it) or waiting."""
    if job is None:
        return Progress.missing
    if job.get("status") in DONE_STATUSES:
        return Progress.done
    if start_deadline is not None and now >= start_deadline and not has_started(job):
        return Progress.not_started
    return Progress.waiting


def starvation_reason(start_timeout_s: float | None, queue: str, environments: list[dict[str, Any]]) -> str:
    """Why nothing started: the compute environments' own words (INVALID, max vCPUs reached...)."""
    limit = format_duration(start_timeout_s) if start_timeout_s else "its"
    said = "; ".join(
        f"{env.get('computeEnvironmentName', '?')}: {env.get('status', '?')}"
        + (f" ({env['statusReason']})" if env.get("statusReason") else "")
        for env in environments
    ) or "no compute environment status available"
    return (f"no capacity: still RUNNABLE in queue {queue} after its {limit} start_timeout; cancelled. "
            f"Compute environments: {said}")
