"""What ECS says about a stopped task, as mlbatch failure classes. Pure: no AWS calls.

ECS reports an end as the task's stopCode (TaskFailedToStart, SpotInterruption,
EssentialContainerExited, UserInitiated...), its stoppedReason, and the container's
exitCode and reason (OutOfMemoryError, CannotPullContainerError...).
"""
from __future__ import annotations

from typing import Any, Sequence

from mlbatch.backends.aws.conventions import CANCEL_REASON, OOM_EXIT_CODE
from mlbatch.backends.failures import FailureClass, classify_exit, format_mib
from mlbatch.backends.protocols import Progress

LIVE = ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING")
NOT_STARTED = ("PROVISIONING", "PENDING", "ACTIVATING")
_INFRASTRUCTURE = ("SpotInterruption", "TaskFailedToStart", "TerminationNotice", "CannotPullContainerError",
                   "ResourceInitializationError", "CannotStartContainerError", "CannotCreateContainerError")


def container_of(task: dict[str, Any]) -> dict[str, Any]:
    containers = task.get("containers") or [{}]
    return next((c for c in containers if c.get("name") == "worker"), containers[0])


def classify_task(task: dict[str, Any], *, memory_mib: int, log_tail: Sequence[str] = ()
                  ) -> tuple[FailureClass | None, str, int | None]:
    """(class, one-line reason, exit code) of a STOPPED task."""
    container = container_of(task)
    exit_code = container.get("exitCode")
    reason = container.get("reason") or ""
    stop_code = task.get("stopCode") or ""
    stopped = task.get("stoppedReason") or ""
    said = " ".join(part for part in (stop_code, stopped, reason) if part)
    if stopped.startswith(CANCEL_REASON):
        return (FailureClass.timeout if ": past its " in stopped else FailureClass.infrastructure), stopped, exit_code
    if exit_code == 0:
        return None, "", 0
    if "OutOfMemoryError" in reason or exit_code == OOM_EXIT_CODE:
        return FailureClass.oom, f"killed for memory over its budget {format_mib(memory_mib)} ({reason or 'exit 137'})", \
            exit_code
    if any(marker in said for marker in _INFRASTRUCTURE):
        return FailureClass.infrastructure, said, exit_code
    if exit_code is not None:
        failure, why = classify_exit(exit_code, None, stderr_tail=log_tail, memory_mib=memory_mib)
        return failure, why, exit_code
    return FailureClass.infrastructure, f"stopped without an exit code: {said or 'no reason given'}", None


def progress(tasks: list[dict[str, Any]], *, now: float, start_deadline: float | None,
             deadline: float | None) -> Progress:
    """done, not_started (still provisioning past start_timeout), timed_out or waiting.

    A task ECS no longer knows (it keeps stopped tasks about an hour) is simply absent:
    the others decide, and collecting reports the absent one as gone.
    """
    if all(task.get("lastStatus") == "STOPPED" for task in tasks):
        return Progress.done
    if deadline is not None and now >= deadline:
        return Progress.timed_out
    if start_deadline is not None and now >= start_deadline and all(
            task.get("lastStatus") in NOT_STARTED for task in tasks if task.get("lastStatus") != "STOPPED"):
        return Progress.not_started
    return Progress.waiting
