"""Job definitions from the settings: one per worker image, registered only when their content changes."""
from __future__ import annotations

from mlbatch.backends.aws.definitions import CONTENT_TAG, resolve_image
from mlbatch.backends.aws_batch.definitions import definition, definition_name, plan
from mlbatch.settings import AwsSettings, BatchSettings, ImageSettings, Settings

SETTINGS = Settings(image=ImageSettings(repository="1.dkr.ecr.eu-west-1.amazonaws.com/mlbatch-worker", tag="abc"),
                    aws=AwsSettings(job_role_arn="arn:job", execution_role_arn="arn:exec"),
                    batch=BatchSettings(log_group="/ml"))


def test_spec_images_name_variants_of_the_deployment_image():
    assert resolve_image("mlbatch-worker:gpu", SETTINGS) == "1.dkr.ecr.eu-west-1.amazonaws.com/mlbatch-worker:abc-gpu"
    assert resolve_image("mlbatch-worker:cpu", SETTINGS, "v2").endswith(":v2-cpu")
    full = "public.ecr.aws/team/worker@sha256:" + "0" * 64
    assert resolve_image(full, SETTINGS) == full
    assert definition_name("mlbatch-worker:gpu", SETTINGS) == "mlbatch-gpu"
    assert definition_name(full, SETTINGS).startswith("mlbatch-img-")


def test_the_definition_carries_roles_logs_and_its_content_hash():
    made = definition("mlbatch-worker:cpu", SETTINGS)
    args = made.register_args
    container = args["containerProperties"]
    assert args["jobDefinitionName"] == "mlbatch-cpu" and args["propagateTags"] is True
    assert container["jobRoleArn"] == "arn:job" and container["executionRoleArn"] == "arn:exec"
    assert container["logConfiguration"] == {"logDriver": "awslogs", "options": {"awslogs-group": "/ml"}}
    assert args["tags"][CONTENT_TAG] == made.content_hash
    assert definition("mlbatch-worker:cpu", SETTINGS, "other").content_hash != made.content_hash


class _Registry:
    def __init__(self, current: dict):
        self.current = current

    def active_definition(self, name):
        return self.current.get(name)


def test_plan_registers_only_what_changed():
    same = definition("mlbatch-worker:cpu", SETTINGS)
    registry = _Registry({"mlbatch-cpu": {"tags": {CONTENT_TAG: same.content_hash}},
                          "mlbatch-gpu": {"tags": {CONTENT_TAG: "stale"}}})
    actions = {d.name: action for d, action in plan({"mlbatch-worker:cpu", "mlbatch-worker:gpu", "x:big"},
                                                    SETTINGS, None, registry)}
    assert actions == {"mlbatch-cpu": "unchanged", "mlbatch-gpu": "register", "mlbatch-big": "register"}
