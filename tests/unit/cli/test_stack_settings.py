"""The CloudFormation stack: cfn-lint clean, its outputs are exactly the settings' AWS values, and
`mlbatch settings --from-stack` turns a real stack (made on moto_server) into working settings."""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlbatch.cli.main import main
from mlbatch.cli.stack_settings import output_name, resource_overrides, settings_values
from mlbatch.settings import SettingsError, load_settings

PROJECT = Path(__file__).resolve().parents[3]
TEMPLATE = PROJECT / "deploy" / "cloudformation" / "mlbatch.yaml"
REGION = "eu-west-1"


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, ...) read as plain values."""


CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def template() -> dict:
    return yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)  # noqa: S506 - a SafeLoader subclass


def test_template_passes_cfn_lint():
    proc = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), str(TEMPLATE)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_outputs_are_exactly_the_settings_fields_that_name_aws_resources():
    fields = {output_name(override): override.path for override in resource_overrides()}
    # derived from the settings models: a new resource field there needs its output here
    assert {"aws.job_role_arn", "batch.queues.gpu-spot", "ecs.subnets", "artifacts.root", "image.repository"} \
        <= set(fields.values())
    outputs = template()["Outputs"]
    assert set(outputs) == set(fields)
    for name, path in fields.items():  # each output says which value it is
        section, _, key = path.rpartition(".")
        assert outputs[name]["Description"].startswith(f"[{section}] {key}"), name


def test_compute_environments_are_sized_by_parameters_and_queues_match_the_roles():
    resources = template()["Resources"]
    environments = {name: r for name, r in resources.items() if r["Type"] == "AWS::Batch::ComputeEnvironment"}
    kinds = sorted((r["Properties"]["ComputeResources"]["Type"], r["Properties"]["ComputeResources"]["Ec2Configuration"]
                    [0]["ImageType"]) for r in environments.values())
    assert kinds == [("EC2", "ECS_AL2023"), ("EC2", "ECS_AL2023_NVIDIA"),
                     ("SPOT", "ECS_AL2023"), ("SPOT", "ECS_AL2023_NVIDIA")]
    parameters = template()["Parameters"]
    assert {"CpuInstanceTypes", "GpuInstanceTypes", "CpuMaxVcpus", "CpuSpotMaxVcpus", "GpuMaxVcpus",
            "GpuSpotMaxVcpus"} <= set(parameters)
    cluster = resources["Cluster"]["Properties"]
    assert cluster["CapacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert load_settings(Path("/nonexistent")).ecs.capacity_providers == {"on-demand": "FARGATE", "spot": "FARGATE_SPOT"}


def test_the_job_role_may_only_touch_the_artifacts():
    resources = template()["Resources"]
    statements = resources["JobRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    actions = {action for statement in statements for action in
               ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])}
    assert actions == {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    assert "ManagedPolicyArns" not in resources["JobRole"]["Properties"]
    execution = resources["ExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert not any(str(action).startswith("s3:") for s in execution for action in
                   ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))


def test_a_stack_without_an_output_is_named_with_the_fix():
    outputs = {output_name(override): "x" for override in resource_overrides()}
    del outputs["BatchQueuesGpuSpot"]
    with pytest.raises(SettingsError, match="stack 'old' has no output BatchQueuesGpuSpot: .* update the stack"):
        settings_values(outputs, "old")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The real template created on moto_server (CloudFormation, IAM, EC2, Batch, ECS, ECR, S3, logs)."""
    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:  # a free port on the loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    session = dict(region_name=REGION, endpoint_url=endpoint, aws_access_key_id="testing",
                   aws_secret_access_key="testing")
    ec2 = boto3.client("ec2", **session)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)]
    cloudformation = boto3.client("cloudformation", **session)
    parameters = {"VpcId": vpc, "SubnetIds": ",".join(subnets), "CpuInstanceTypes": "c6i.large,m6i.xlarge",
                  "GpuInstanceTypes": "g5.xlarge"}
    cloudformation.create_stack(StackName="mlbatch", TemplateBody=TEMPLATE.read_text(), Capabilities=["CAPABILITY_IAM"],
                                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
    try:
        yield {"endpoint": endpoint, "subnets": subnets, "session": session}
    finally:
        server.stop()


def aws_cli_env(stack: dict, monkeypatch) -> None:
    """A person's AWS environment (credentials, region), pointed at the stand-in."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack["endpoint"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.mark.slow
def test_settings_from_a_real_stack(stack, tmp_path, monkeypatch, capsys):
    import boto3

    aws_cli_env(stack, monkeypatch)
    for override in resource_overrides():
        monkeypatch.delenv(override.env, raising=False)

    assert main(["settings", "--from-stack", "mlbatch"]) == 0
    settings_file = tmp_path / "mlbatch.toml"
    settings_file.write_text(capsys.readouterr().out)
    settings = load_settings(settings_file)

    # every value names the resource the stack made
    batch = boto3.client("batch", **stack["session"])
    queues = {q["jobQueueName"]: q["jobQueueArn"] for q in batch.describe_job_queues()["jobQueues"]}
    assert settings.batch.queues == {"cpu": queues["mlbatch-cpu"], "gpu": queues["mlbatch-gpu"],
                                     "cpu-spot": queues["mlbatch-cpu-spot"], "gpu-spot": queues["mlbatch-gpu-spot"]}
    assert settings.aws.region == REGION and settings.aws.conn_id == "aws_default"
    iam = boto3.client("iam", **stack["session"])
    roles = {r["Arn"] for r in iam.list_roles()["Roles"]}
    assert {settings.aws.job_role_arn, settings.aws.execution_role_arn} <= roles
    assert settings.ecs.subnets == stack["subnets"] and settings.ecs.security_groups[0].startswith("sg-")
    assert settings.ecs.cluster == "mlbatch"
    assert settings.ecs.log_group == "/ecs/mlbatch" and settings.batch.log_group == "/aws/batch/mlbatch"
    # the stack's own bucket (moto's state is shared by every server in this process: other tests' buckets too)
    bucket = boto3.client("cloudformation", **stack["session"]).describe_stack_resource(
        StackName="mlbatch", LogicalResourceId="ArtifactBucket")["StackResourceDetail"]["PhysicalResourceId"]
    assert settings.artifacts.root == f"s3://{bucket}/mlbatch"
    assert settings.image.repository.endswith(".amazonaws.com/mlbatch-worker")

    # the .env form gives the same settings through the environment (compose's aws mode)
    assert main(["settings", "--from-stack", "mlbatch", "--format", "env"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    env = dict(line.split("=", 1) for line in lines)
    assert env.pop("MLBATCH_ARTIFACTS") == settings.artifacts.root
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from_env = load_settings(tmp_path / "absent.toml")
    assert from_env.model_dump(exclude={"source", "artifacts"}) == settings.model_dump(exclude={"source", "artifacts"})


@pytest.mark.slow
def test_a_missing_stack_is_one_line(stack, monkeypatch, capsys):
    aws_cli_env(stack, monkeypatch)
    assert main(["settings", "--from-stack", "nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mlbatch settings: cannot read stack 'nope': ") and err.count("\n") == 1
