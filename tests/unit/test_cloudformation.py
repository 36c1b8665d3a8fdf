"""The CloudFormation template: TLS-only versioned bucket, IMDSv2 on every Batch instance, HTTPS-only
egress, and checkov with 0 failed checks (each check that does not apply skipped with its reason)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from mlbatch.cli.tool_venv import ToolVenvError, cache_home, tool_venv

PROJECT = Path(__file__).resolve().parents[2]
TEMPLATE = PROJECT / "deploy" / "cloudformation" / "mlbatch.yaml"
CHECKOV_VERSION = "3.3.30"  # its own venv: checkov pins versions the project's own pins fight


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (!Ref, !Sub, !GetAtt) as {"Ref": ...}-like mappings."""


CfnLoader.add_multi_constructor("!", lambda loader, tag, node: {tag: loader.construct_scalar(node)
                                if isinstance(node, yaml.ScalarNode) else loader.construct_sequence(node)})


@pytest.fixture(scope="module")
def resources() -> dict:
    return yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)["Resources"]  # noqa: S506 - a SafeLoader subclass


def of_type(resources: dict, kind: str) -> dict:
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def test_every_batch_ec2_environment_uses_the_imdsv2_launch_template(resources):
    templates = of_type(resources, "AWS::EC2::LaunchTemplate")
    assert list(templates) == ["WorkerLaunchTemplate"]
    options = templates["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]["MetadataOptions"]
    assert options == {"HttpEndpoint": "enabled", "HttpTokens": "required", "HttpPutResponseHopLimit": 1}
    environments = of_type(resources, "AWS::Batch::ComputeEnvironment")
    assert len(environments) == 4
    for name, environment in environments.items():
        assert environment["Properties"]["ComputeResources"]["LaunchTemplate"]["LaunchTemplateId"] == \
            {"Ref": "WorkerLaunchTemplate"}, name


def test_the_artifact_bucket_is_versioned_and_refuses_plain_http(resources):
    bucket = resources["ArtifactBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (statement,) = resources["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == "s3:*" and statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert len(statement["Resource"]) == 2  # the bucket and every object in it


def test_workers_may_only_leave_over_https(resources):
    (group,) = of_type(resources, "AWS::EC2::SecurityGroup").values()
    rules = group["Properties"]["SecurityGroupEgress"]
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in rules] == [("tcp", 443, 443)]
    assert "SecurityGroupIngress" not in group["Properties"]


def test_every_skipped_check_says_why(resources):
    for name, resource in resources.items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV_") and len(skip.get("comment", "")) > 20, name


def checkov_venv() -> Path:
    """checkov in a venv of its own under the user's cache folder, made once per checkov version."""
    requirement = f"checkov=={CHECKOV_VERSION}"
    try:
        return tool_venv(cache_home() / "mlbatch-tests" / f"checkov-{CHECKOV_VERSION}", requirement)
    except ToolVenvError as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(str(error))
        pytest.skip(f"{error} (no package index?)")


@pytest.mark.slow
def test_checkov_finds_no_failed_check():
    venv = checkov_venv()
    done = subprocess.run([str(venv / "bin" / "checkov"), "--file", str(TEMPLATE), "--framework", "cloudformation",
                           "--output", "json", "--compact", "--skip-download"],
                          capture_output=True, text=True, timeout=600, cwd=PROJECT)
    report = json.loads(done.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0 and failed == [], failed
    assert summary["passed"] > 40
    skipped = {c["check_id"] for c in report["results"]["skipped_checks"]}
    assert skipped == {"CKV_AWS_18", "CKV_AWS_51", "CKV_AWS_136", "CKV_AWS_158"}
