"""The Batch job and ECS task definitions as AWS registers them: never root, read-only root, scratch at /tmp."""
from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlbatch.backends.aws_batch.definitions import definition as batch_definition
from mlbatch.backends.ecs.definitions import definition as ecs_definition
from mlbatch.settings import AwsSettings, Settings

SETTINGS = Settings(aws=AwsSettings(region="eu-west-1", job_role_arn="arn:aws:iam::123456789012:role/job",
                                    execution_role_arn="arn:aws:iam::123456789012:role/exec"))
SCRATCH = [{"sourceVolume": "scratch", "containerPath": "/tmp", "readOnly": False}]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def test_the_registered_batch_definition_runs_as_the_image_user_on_a_read_only_root(aws: Any) -> None:
    client = boto3.client("batch")
    client.register_job_definition(**batch_definition("mlbatch-worker:cpu", SETTINGS).register_args)
    registered = client.describe_job_definitions(jobDefinitionName="mlbatch-cpu")["jobDefinitions"][0]
    container = registered["containerProperties"]
    assert container["user"] == "10001" and container["privileged"] is False
    assert container["readonlyRootFilesystem"] is True
    assert container["volumes"] == [{"name": "scratch"}] and container["mountPoints"] == SCRATCH
    assert {"name": "HOME", "value": "/tmp"} in container["environment"]  # caches land on the scratch volume


def test_the_registered_ecs_task_definition_runs_as_the_image_user_on_a_read_only_root(aws: Any) -> None:
    client = boto3.client("ecs")
    args = dict(ecs_definition("mlbatch-worker:cpu", SETTINGS).register_args)
    args["tags"] = [{"key": k, "value": v} for k, v in sorted(args["tags"].items())]
    client.register_task_definition(**args)
    registered = client.describe_task_definition(taskDefinition="mlbatch-ecs-cpu")["taskDefinition"]
    container = registered["containerDefinitions"][0]
    assert container["user"] == "10001" and container["readonlyRootFilesystem"] is True
    assert not container.get("privileged")  # unset means false, and Fargate takes no other value
    assert container["mountPoints"] == SCRATCH and registered["volumes"][0]["name"] == "scratch"
    assert {"name": "HOME", "value": "/tmp"} in container["environment"]
