"""Batch job descriptions -> failure classes, progress and the per-child summary."""
from __future__ import annotations

import pytest

from mlbatch.backends.aws.conventions import CANCEL_REASON, summary_line
from mlbatch.backends.aws_batch.outcome import classify_job, has_started, progress, starvation_reason
from mlbatch.backends.failures import FailureClass


def _failed(status_reason="Essential container in task exited", exit_code=None, reason=None) -> dict:
    container = {}
    if exit_code is not None:
        container["exitCode"] = exit_code
    if reason:
        container["reason"] = reason
    return {"status": "FAILED", "statusReason": status_reason, "container": container}


@pytest.mark.parametrize("job, tail, expected, says", [
    (_failed(exit_code=65), ["mlbatch-bad-input: column 'churned' is missing"], FailureClass.bad_input,
     "column 'churned' is missing"),
    (_failed(exit_code=137, reason="OutOfMemoryError: Container killed due to memory usage"), [],
     FailureClass.oom, "budget 2.0 GiB"),
    (_failed(exit_code=137), [], FailureClass.oom, "exit code 137"),
    (_failed("Host EC2 (instance i-0abc) terminated."), [], FailureClass.infrastructure, "spot reclaim"),
    (_failed("Task failed to start", reason="CannotPullContainerError: pull access denied"), [],
     FailureClass.infrastructure, "CannotPullContainerError"),
    (_failed("Job attempt duration exceeded timeout"), [], FailureClass.timeout, "30m timeout"),
    (_failed(exit_code=1), ["Traceback ...", "ValueError: boom"], FailureClass.code_error, "ValueError: boom"),
    (_failed(f"{CANCEL_REASON} (the Airflow task was stopped)", exit_code=137), [], FailureClass.infrastructure,
     "cancelled"),
    (_failed("Dependent job failed"), [], FailureClass.infrastructure, "without an exit code"),
])
def test_each_batch_ending_gets_its_class(job, tail, expected, says):
    failure, reason, _ = classify_job(job, memory_mib=2048, timeout_s=1800, log_tail=tail)
    assert failure is expected
    assert says in reason


def test_success_has_no_class():
    assert classify_job({"status": "SUCCEEDED", "container": {"exitCode": 0}}, memory_mib=1, timeout_s=None) == (
        None, "", 0)


def test_progress_reports_starvation_only_for_jobs_that_never_started():
    queued = {"status": "RUNNABLE"}
    assert progress(queued, now=100, start_deadline=200) == "waiting"
    assert progress(queued, now=300, start_deadline=200) == "not_started"
    assert progress({"status": "RUNNING"}, now=300, start_deadline=200) == "waiting"
    assert progress({"status": "FAILED"}, now=0, start_deadline=None) == "done"
    array = {"status": "PENDING", "arrayProperties": {"statusSummary": {"RUNNABLE": 3, "RUNNING": 1}}}
    assert has_started(array) and progress(array, now=300, start_deadline=200) == "waiting"


def test_starvation_reason_quotes_the_compute_environments():
    text = starvation_reason(1800, "mlbatch-gpu", [{"computeEnvironmentName": "gpu-ce", "status": "INVALID",
                                                    "statusReason": "CLIENT_ERROR - no p3 capacity"}])
    assert "30m start_timeout" in text and "gpu-ce: INVALID (CLIENT_ERROR - no p3 capacity)" in text


def test_summary_line_names_failed_shards():
    line = summary_line("churn.train", {0: "SUCCEEDED", 1: "FAILED", 2: "SUCCEEDED", 4: "FAILED"})
    assert line == "churn.train: 4 children: 2 failed, 2 succeeded (shards 1,4)"
