"""The ECS backend's pure parts and its AWS calls, exactly (botocore's Stubber fails on any other call)."""
from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from mlbatch.backends.ecs import fargate
from mlbatch.backends.ecs.client import EcsTasks
from mlbatch.backends.ecs.definitions import definition
from mlbatch.backends.ecs.outcome import classify_task, progress
from mlbatch.backends.ecs.submission import run_task_args, started_by
from mlbatch.backends.failures import FailureClass
from mlbatch.backends.jobs import JobRequest
from mlbatch.settings import AwsSettings, Settings

COMMAND = ["python", "-m", "workers", "run", "--request", "{}"]


def _request(**overrides) -> JobRequest:
    fields = dict(name="churn.embed", image="mlbatch-worker:gpu", command=COMMAND, env={"MLBATCH_TRY_NUMBER": "1"},
                  vcpu=4, memory_mib=16384, gpu=1, shard_count=3, identity="0123456789abcdef9999",
                  tags={"dag": "churn", "step": "embed", "key": "0123456789abcdef9999"})
    fields.update(overrides)
    return JobRequest(**fields)


def test_a_gpu_shard_is_one_task_on_the_gpu_provider_with_its_index():
    args = run_task_args(_request(), 2, cluster="ml", task_definition="mlbatch-ecs-gpu", capacity_provider="gpu-ec2",
                         subnets=["subnet-1"], security_groups=["sg-1"], assign_public_ip=False)
    container = args["overrides"]["containerOverrides"][0]
    env = {item["name"]: item["value"] for item in container["environment"]}
    assert args == {
        "cluster": "ml", "taskDefinition": "mlbatch-ecs-gpu", "count": 1, "startedBy": "mlb-0123456789abcdef-2",
        "capacityProviderStrategy": [{"capacityProvider": "gpu-ec2", "weight": 1}],
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"],
                                                         "assignPublicIp": "DISABLED"}},
        "overrides": {"containerOverrides": [{"name": "worker", "command": COMMAND,
                                              "environment": container["environment"],
                                              "resourceRequirements": [{"type": "GPU", "value": "1"}]}],
                      "cpu": "4096", "memory": "16384"},
        "tags": [{"key": "mlbatch:dag", "value": "churn"}, {"key": "mlbatch:key", "value": "0123456789abcdef9999"},
                 {"key": "mlbatch:shard", "value": "2"}, {"key": "mlbatch:step", "value": "embed"}],
        "enableECSManagedTags": True, "propagateTags": "TASK_DEFINITION",
    }
    assert env["MLBATCH_SHARD_INDEX"] == "2" and env["MLBATCH_SHARD_COUNT"] == "3" and env["OMP_NUM_THREADS"] == "4"
    assert len(started_by(_request(identity="x" * 64), 9999)) <= 36


def test_fargate_sizes_and_the_nearest_valid_one():
    assert fargate.is_valid(1, 2048) and fargate.is_valid(0.25, 512) and not fargate.is_valid(1, 1024)
    assert fargate.nearest(1, 1024) == (1, 2048)
    assert fargate.nearest(3, 5000) == (4, 8192)
    assert fargate.nearest(0.5, 1000) == (0.5, 1024)
    assert fargate.nearest(64, 10**6) == (16, 122880)


def _stopped(stop_code="EssentialContainerExited", reason="Essential container in task exited", exit_code=None,
             container_reason=None) -> dict:
    container = {"name": "worker", "lastStatus": "STOPPED"}
    if exit_code is not None:
        container["exitCode"] = exit_code
    if container_reason:
        container["reason"] = container_reason
    return {"lastStatus": "STOPPED", "stopCode": stop_code, "stoppedReason": reason, "containers": [container]}


@pytest.mark.parametrize("task, tail, expected, says", [
    (_stopped(exit_code=0), [], None, ""),
    (_stopped(exit_code=65), ["mlbatch-bad-input: no column 'y'"], FailureClass.bad_input, "no column 'y'"),
    (_stopped(exit_code=137, container_reason="OutOfMemoryError: Container killed due to memory usage"), [],
     FailureClass.oom, "OutOfMemoryError"),
    (_stopped("SpotInterruption", "Your Spot Task was interrupted."), [], FailureClass.infrastructure,
     "SpotInterruption"),
    (_stopped("TaskFailedToStart", "CannotPullContainerError: pull image manifest has been retried"), [],
     FailureClass.infrastructure, "CannotPullContainerError"),
    (_stopped("TaskFailedToStart", "ResourceInitializationError: unable to pull secrets"), [],
     FailureClass.infrastructure, "ResourceInitializationError"),
    (_stopped(exit_code=1), ["KeyError: 'x'"], FailureClass.code_error, "KeyError: 'x'"),
    (_stopped("UserInitiated", "mlbatch: cancelled: past its 30m timeout", exit_code=137), [], FailureClass.timeout,
     "past its 30m timeout"),
    (_stopped("UserInitiated", "mlbatch: cancelled (the Airflow task was stopped)", exit_code=137), [],
     FailureClass.infrastructure, "cancelled"),
])
def test_each_ecs_stop_gets_its_class(task, tail, expected, says):
    failure, reason, _ = classify_task(task, memory_mib=2048, log_tail=tail)
    assert failure is expected and says in reason


def test_progress_reports_deadlines_and_starvation():
    running, pending, stopped = {"lastStatus": "RUNNING"}, {"lastStatus": "PROVISIONING"}, {"lastStatus": "STOPPED"}
    assert progress([stopped, stopped], now=0, start_deadline=None, deadline=None) == "done"
    assert progress([running], now=100, start_deadline=50, deadline=200) == "waiting"
    assert progress([running], now=300, start_deadline=50, deadline=200) == "timed_out"
    assert progress([pending, stopped], now=100, start_deadline=50, deadline=200) == "not_started"


@pytest.fixture
def stubbed():
    from airflow.providers.amazon.aws.hooks.ecs import EcsHook

    client = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    hook = EcsHook(aws_conn_id=None, region_name="us-east-1")
    hook.__dict__["conn"] = client
    with Stubber(client) as stubber:
        yield hook, stubber
        stubber.assert_no_pending_responses()


def test_run_task_backs_off_when_throttled(stubbed):
    hook, stubber = stubbed
    args = {"cluster": "ml", "taskDefinition": "d", "count": 1}
    stubber.add_client_error("run_task", service_error_code="ThrottlingException", http_status_code=400,
                             expected_params=args)
    stubber.add_response("run_task", {"tasks": [{"taskArn": "arn:t/1", "lastStatus": "PROVISIONING"}], "failures": []},
                         expected_params=args)
    pauses: list[float] = []
    assert EcsTasks(None, None, hook=hook, sleep=pauses.append).run(args)["taskArn"] == "arn:t/1"
    assert len(pauses) == 1 and 1 / 3 <= pauses[0] <= 1.36  # the provider's exponential_delay(1), with jitter


def test_a_task_ecs_could_not_place_comes_back_as_failed_to_start(stubbed):
    hook, stubber = stubbed
    stubber.add_response("run_task", {"tasks": [], "failures": [{"reason": "RESOURCE:GPU"}]},
                         expected_params={"cluster": "ml", "taskDefinition": "d", "count": 1})
    task = EcsTasks(None, None, hook=hook).run({"cluster": "ml", "taskDefinition": "d", "count": 1})
    assert task["taskArn"] is None
    assert classify_task(task, memory_mib=1)[0] is FailureClass.infrastructure


def test_find_live_looks_up_the_shard_by_its_started_by(stubbed):
    hook, stubber = stubbed
    stubber.add_response("list_tasks", {"taskArns": ["arn:t/1"]},
                         expected_params={"cluster": "ml", "startedBy": "mlb-k-0", "desiredStatus": "RUNNING"})
    stubber.add_response("describe_tasks", {"tasks": [{"taskArn": "arn:t/1", "lastStatus": "RUNNING"}]},
                         expected_params={"cluster": "ml", "tasks": ["arn:t/1"], "include": ["TAGS"]})
    assert EcsTasks(None, None, hook=hook).find_live("ml", "mlb-k-0")["taskArn"] == "arn:t/1"


def test_the_task_definition_has_both_roles_and_awslogs():
    settings = Settings(aws=AwsSettings(region="eu-west-1", job_role_arn="arn:job", execution_role_arn="arn:exec"))
    args = definition("mlbatch-worker:cpu", settings).register_args
    assert args["family"] == "mlbatch-ecs-cpu" and args["taskRoleArn"] == "arn:job"
    assert args["executionRoleArn"] == "arn:exec" and args["networkMode"] == "awsvpc"
    options = args["containerDefinitions"][0]["logConfiguration"]["options"]
    assert options == {"awslogs-group": "/ecs/mlbatch", "awslogs-stream-prefix": "mlbatch", "awslogs-region": "eu-west-1"}
