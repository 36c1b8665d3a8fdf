"""A finished job or stopped task is described once; its log is read in one call (botocore's Stubber
fails on any call not listed, so each test lists every call it allows)."""
from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from bench.aws_peers import side_summary
from mlbatch.backends.aws.logs import last_lines
from mlbatch.backends.aws_batch.client import BatchJobs, log_stream
from mlbatch.backends.ecs.client import EcsTasks


def _client(service: str):
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_the_end_of_a_log_stream_is_one_get_log_events_call():
    logs = _client("logs")
    with Stubber(logs) as stubber:
        stubber.add_response("get_log_events", {"events": [{"message": "a"}, {"message": "b"}],
                                                "nextForwardToken": "f", "nextBackwardToken": "b"},
                             expected_params={"logGroupName": "g", "logStreamName": "s", "startFromHead": False,
                                              "limit": 10_000})
        assert last_lines(logs, "g", "s") == ["a", "b"]
        stubber.assert_no_pending_responses()


def test_a_batch_jobs_log_stream_comes_from_its_description():
    job = {"container": {"logStreamName": "mlbatch-cpu/default/j1",
                         "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/team/jobs"}}}}
    assert log_stream(job, "eu-west-1") == ("/team/jobs", "mlbatch-cpu/default/j1", "eu-west-1")
    assert log_stream({"container": {"logStreamName": "s"}}, None) == ("/aws/batch/job", "s", None)
    assert log_stream({"container": {}}, None) is None  # not started yet: no stream
    assert log_stream({"container": {"logStreamName": "s", "logConfiguration": {"logDriver": "splunk"}}}, None) is None


def test_a_finished_batch_job_is_described_once_for_its_look_its_collect_and_its_log():
    from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook

    batch = _client("batch")
    hook = BatchClientHook(aws_conn_id=None, region_name="us-east-1")
    hook.__dict__["conn"] = batch
    job = {"jobId": "j1", "jobName": "n", "jobQueue": "q", "status": "SUCCEEDED", "startedAt": 1, "createdAt": 0,
           "jobDefinition": "d", "container": {"logStreamName": "s"}}
    with Stubber(batch) as stubber:
        stubber.add_response("describe_jobs", {"jobs": [{**job, "status": "RUNNING"}]}, {"jobs": ["j1"]})
        stubber.add_response("describe_jobs", {"jobs": [job]}, {"jobs": ["j1"]})
        jobs = BatchJobs(None, "us-east-1", hook=hook)
        assert jobs.describe("j1")["status"] == "RUNNING"  # a live job is asked again
        assert jobs.describe("j1")["status"] == "SUCCEEDED"
        assert jobs.describe("j1") == job  # finished: no third call
        stubber.assert_no_pending_responses()


def test_a_stopped_ecs_task_is_described_once_and_a_running_one_each_time():
    from airflow.providers.amazon.aws.hooks.ecs import EcsHook

    ecs = _client("ecs")
    hook = EcsHook(aws_conn_id=None, region_name="us-east-1")
    hook.__dict__["conn"] = ecs
    stopped = {"taskArn": "t1", "lastStatus": "STOPPED"}
    running = {"taskArn": "t2", "lastStatus": "RUNNING"}
    with Stubber(ecs) as stubber:
        stubber.add_response("describe_tasks", {"tasks": [stopped, running]},
                             {"cluster": "c", "tasks": ["t1", "t2"], "include": ["TAGS"]})
        stubber.add_response("describe_tasks", {"tasks": [{**running, "lastStatus": "STOPPED"}]},
                             {"cluster": "c", "tasks": ["t2"], "include": ["TAGS"]})
        tasks = EcsTasks(None, "us-east-1", hook=hook)
        assert [t["lastStatus"] for t in tasks.describe("c", ["t1", "t2"])] == ["STOPPED", "RUNNING"]
        assert [t["lastStatus"] for t in tasks.describe("c", ["t1", "t2"])] == ["STOPPED", "STOPPED"]
        assert tasks.describe("c", ["t1", "t2"])[0] == stopped  # both stopped: no third call
        stubber.assert_no_pending_responses()


@pytest.mark.parametrize("totals", [[4, 4, 5], [11, 7, 8]])
def test_the_peers_summary_reports_the_median_and_the_most_calls(totals):
    runs = [{"s": 1.0 + i, "calls": {"DescribeJobs": n - 2, "SubmitJob": 1, "GetLogEvents": 1}}
            for i, n in enumerate(totals)]
    summary = side_summary(runs)
    assert summary["calls_median"] == sorted(totals)[1] and summary["calls_max"] == max(totals)
    assert summary["median_s"] == 2.0
    assert summary["calls_of_last_run"] == {"DescribeJobs": totals[-1] - 2, "GetLogEvents": 1, "SubmitJob": 1}
