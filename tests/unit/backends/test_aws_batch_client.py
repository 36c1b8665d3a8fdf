"""What moto does not model, with the exact AWS calls (botocore's Stubber fails on any other call):
SubmitJob throttling backoff, reattach lookup, RUNNABLE starvation, terminate on kill."""
from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber

from mlbatch.backends.aws_batch.backend import AwsBatchBackend
from mlbatch.backends.aws_batch.client import BatchJobs
from mlbatch.backends.aws_batch.submission import submit_job_args
from mlbatch.backends.failures import FailureClass
from mlbatch.backends.jobs import JobRequest
from mlbatch.settings import BatchSettings, Settings


@pytest.fixture
def stubbed():
    from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook

    client = boto3.client("batch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    hook = BatchClientHook(aws_conn_id=None, region_name="us-east-1")
    hook.__dict__["conn"] = client  # the provider's hook logic, over a stubbed client
    with Stubber(client) as stubber:
        yield hook, stubber
        stubber.assert_no_pending_responses()


def test_submit_backs_off_when_throttled_then_submits_once(stubbed):
    hook, stubber = stubbed
    args = {"jobName": "j", "jobQueue": "q", "jobDefinition": "d"}
    for _ in range(2):
        stubber.add_client_error("submit_job", service_error_code="TooManyRequestsException",
                                 http_status_code=429, expected_params=args)
    stubber.add_response("submit_job", {"jobId": "job-1", "jobName": "j"}, expected_params=args)
    pauses: list[float] = []
    assert BatchJobs(None, None, hook=hook, sleep=pauses.append).submit(args) == "job-1"
    assert len(pauses) == 2 and pauses[0] < pauses[1] + 1  # exponential delays with jitter, one per throttle


def test_other_submit_errors_are_not_retried(stubbed):
    hook, stubber = stubbed
    stubber.add_client_error("submit_job", service_error_code="ClientException", http_status_code=400)
    with pytest.raises(Exception, match="ClientException"):
        BatchJobs(None, None, hook=hook, sleep=lambda s: pytest.fail("slept")).submit(
            {"jobName": "j", "jobQueue": "q", "jobDefinition": "d"})


def test_find_live_takes_only_a_live_parent_with_the_same_cache_key(stubbed):
    hook, stubber = stubbed
    stubber.add_response("list_jobs", {"jobSummaryList": [
        {"jobId": "old", "jobName": "n", "status": "FAILED"},
        {"jobId": "live", "jobName": "n", "status": "RUNNING"},
        {"jobId": "live:0", "jobName": "n", "status": "RUNNING"},
        {"jobId": "other-key", "jobName": "n", "status": "RUNNABLE"},
    ]}, expected_params={"jobQueue": "q", "filters": [{"name": "JOB_NAME", "values": ["n"]}]})
    stubber.add_response("describe_jobs", {"jobs": [
        _job("live", "RUNNING", {"mlbatch:key": "k1"}), _job("other-key", "RUNNABLE", {"mlbatch:key": "k2"})]},
        expected_params={"jobs": ["live", "other-key"]})
    assert BatchJobs(None, None, hook=hook).find_live("q", "n", "k1")["jobId"] == "live"


def _job(job_id: str, status: str, tags: dict | None = None) -> dict:
    return {"jobId": job_id, "jobName": "n", "jobQueue": "q", "status": status, "startedAt": 0,
            "jobDefinition": "d", "tags": tags or {}, "createdAt": 1}


def test_a_job_starving_in_runnable_is_cancelled_with_the_compute_environments_reason(stubbed):
    hook, stubber = stubbed
    stubber.add_response("describe_jobs", {"jobs": [_job("j1", "RUNNABLE")]}, expected_params={"jobs": ["j1"]})
    stubber.add_response("describe_job_queues", {"jobQueues": [{
        "jobQueueName": "gpu-q", "jobQueueArn": "arn:q", "state": "ENABLED", "priority": 1,
        "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "arn:ce/gpu"}]}]},
        expected_params={"jobQueues": ["gpu-q"]})
    stubber.add_response("describe_compute_environments", {"computeEnvironments": [{
        "computeEnvironmentName": "gpu", "computeEnvironmentArn": "arn:ce/gpu", "status": "VALID",
        "statusReason": "maxvCpus 16 reached", "ecsClusterArn": "c"}]},
        expected_params={"computeEnvironments": ["arn:ce/gpu"]})
    stubber.add_response("terminate_job", {}, expected_params={"jobId": "j1", "reason": ANY})
    settings = Settings(batch=BatchSettings(queues={"gpu": "gpu-q"}, poll_interval=timedelta(seconds=1)))
    backend = AwsBatchBackend(log=lambda line: None, settings=settings,
                              jobs=BatchJobs(None, None, hook=hook), sleep=lambda s: None, clock=lambda: 10_000.0)
    from mlbatch.backends.aws_batch.backend import BatchHandle

    handle = BatchHandle(job_id="j1", job_name="n", queue="gpu-q", name="d.s", indices=[0], shard_count=1,
                         memory_mib=1024, vcpu=1, gpu=1, spot=False, start_timeout_s=60, submitted_at=1_000.0)
    result = backend.wait(handle)
    failure = result.first_failure
    assert failure.failure is FailureClass.infrastructure
    assert "still RUNNABLE in queue gpu-q after its 1m start_timeout" in failure.reason
    assert "gpu: VALID (maxvCpus 16 reached)" in failure.reason


def test_on_kill_terminates_the_submitted_job(stubbed):
    hook, stubber = stubbed
    request = JobRequest(name="d.s", image="mlbatch-worker:cpu", command=["true"])
    stubber.add_response("submit_job", {"jobId": "j9", "jobName": "n"}, expected_params=submit_job_args(
        request, queue="cpu-q", job_definition="mlbatch-cpu", spot_retries=3))
    stubber.add_response("terminate_job", {}, expected_params={
        "jobId": "j9", "reason": "mlbatch: cancelled (the Airflow task was stopped)"})
    settings = Settings(batch=BatchSettings(queues={"cpu": "cpu-q"}))
    backend = AwsBatchBackend(log=lambda line: None, settings=settings, jobs=BatchJobs(None, None, hook=hook))
    backend.submit(request)
    backend.cancel()


def test_the_definition_is_looked_up_only_when_submit_fails_and_a_missing_one_says_how_to_fix_it(stubbed):
    from mlbatch.settings import SettingsError

    hook, stubber = stubbed
    request = JobRequest(name="d.s", image="mlbatch-worker:cpu", command=["true"])
    stubber.add_client_error("submit_job", "ClientException", "Job definition mlbatch-cpu does not exist",
                             expected_params=submit_job_args(request, queue="cpu-q", job_definition="mlbatch-cpu",
                                                             spot_retries=3))
    stubber.add_response("describe_job_definitions", {"jobDefinitions": []},
                         expected_params={"jobDefinitionName": "mlbatch-cpu", "status": "ACTIVE"})
    settings = Settings(batch=BatchSettings(queues={"cpu": "cpu-q"}))
    backend = AwsBatchBackend(log=lambda line: None, settings=settings, jobs=BatchJobs(None, None, hook=hook))
    with pytest.raises(SettingsError, match="job definition 'mlbatch-cpu' .* is not registered: run `mlbatch deploy"):
        backend.submit(request)
