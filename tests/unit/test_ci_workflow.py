"""The users' GitHub Actions workflow: valid against GitHub's workflow schema, and it does what the README says."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
WORKFLOW = PROJECT / ".github" / "workflows" / "mlbatch.yaml"


def check_workflow_schema(path: Path) -> subprocess.CompletedProcess:
    """check-jsonschema with the workflow schema it ships (SchemaStore's github-workflow): no network."""
    return subprocess.run([str(Path(sys.executable).with_name("check-jsonschema")), "--builtin-schema",
                           "vendor.github-workflows", str(path)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def run_lines(job: dict) -> str:
    return "\n".join(step["run"] for step in job["steps"] if "run" in step)


def test_workflow_matches_the_github_workflow_schema(tmp_path):
    result = check_workflow_schema(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:", 1))  # the check can fail
    assert check_workflow_schema(broken).returncode != 0


def test_every_push_lints_and_tests(workflow):
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert triggers["push"]["branches"] == ["**"] and triggers["push"]["tags"]
    test = workflow["jobs"]["test"]
    assert "if" not in test
    commands = run_lines(test).splitlines()
    assert commands[-2:] == ["make lint", 'sudo -E env "PATH=$PATH" make test']


def test_a_tag_pushes_both_images_tagged_with_the_sha_then_deploys_that_sha(workflow):
    images, deploy = workflow["jobs"]["images"], workflow["jobs"]["deploy"]
    assert images["if"] == "startsWith(github.ref, 'refs/tags/')" and images["needs"] == "test"
    assert images["strategy"]["matrix"]["variant"] == ["cpu", "gpu"]
    build = next(step["with"] for step in images["steps"] if step.get("uses", "").startswith("docker/build-push-action"))
    assert build["file"] == "Dockerfile.worker" and build["push"] is True
    assert "VARIANT=${{ matrix.variant }}" in build["build-args"] and "GIT_SHA=${{ github.sha }}" in build["build-args"]
    # the tag `deploy --image-tag SHA` registers: {repository}:{tag}-{variant}
    assert build["tags"].endswith(":${{ github.sha }}-${{ matrix.variant }}")
    assert deploy["needs"] == "images"
    assert 'mlbatch deploy --image-tag "${{ github.sha }}"' in run_lines(deploy)
    assert "mlbatch settings --from-stack" in run_lines(deploy)


def test_aws_access_is_a_role_assumed_through_oidc_not_a_stored_key(workflow):
    text = WORKFLOW.read_text()
    assert "secrets." not in text and "aws-access-key-id" not in text
    for name in ("images", "deploy"):
        job = workflow["jobs"][name]
        assert job["permissions"]["id-token"] == "write"
        login = next(s["with"] for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials"))
        assert login["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    assert workflow["permissions"] == {"contents": "read"}


def test_actions_are_pinned_to_a_major_version(workflow):
    uses = [step["uses"] for job in workflow["jobs"].values() for step in job["steps"] if "uses" in step]
    assert uses and all(use.rpartition("@")[2].startswith("v") for use in uses), uses
