"""`mlbatch settings --from-stack STACK`: the settings a CloudFormation stack's outputs give.

deploy/cloudformation/mlbatch.yaml has one output per settings value that names an AWS
resource (the fields marked AWS_RESOURCE in mlbatch.settings), named after it in CamelCase:
[batch.queues] cpu-spot is the output BatchQueuesCpuSpot. Printed as mlbatch.toml, or as the
MLBATCH_* lines of a docker compose .env.
"""
from __future__ import annotations

import json
import re
from typing import Any

from mlbatch.settings import Override, SettingsError, overrides

ARTIFACTS_ENV = "MLBATCH_ARTIFACTS"  # wins over [artifacts] root, and compose sets it: the .env names it


def output_name(override: Override) -> str:
    """The stack output of a settings value: aws.job_role_arn -> AwsJobRoleArn."""
    return "".join(word.capitalize() for word in re.split(r"[._-]", override.path))


def resource_overrides() -> list[Override]:
    return [override for override in overrides() if override.names_aws_resource]


def stack_outputs(stack_name: str, region: str | None = None, client: Any = None) -> dict[str, str]:
    """OutputKey -> OutputValue of a stack. Plain boto3 with the caller's AWS credentials (profile,
    environment): whoever made the stack runs this, often before Airflow has any connection."""
    if client is None:
        import boto3

        client = boto3.client("cloudformation", region_name=region)
    stacks = client.describe_stacks(StackName=stack_name)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def settings_values(outputs: dict[str, str], stack_name: str) -> dict[Override, str]:
    """The settings value of each resource field, or SettingsError naming the missing outputs."""
    wanted = {output_name(override): override for override in resource_overrides()}
    missing = sorted(set(wanted) - set(outputs))
    if missing:
        raise SettingsError(f"stack {stack_name!r} has no output {', '.join(missing)}: it was not made from "
                            "deploy/cloudformation/mlbatch.yaml (or an older version): update the stack with it")
    return {override: outputs[name] for name, override in wanted.items()}


def as_toml(values: dict[Override, str], stack_name: str, conn_id: str) -> str:
    tables: dict[str, list[str]] = {}
    for override, value in values.items():
        table = f"{override.section}.{override.field}" if override.key else override.section
        key = override.key or override.field
        rendered = json.dumps([v for v in value.split(",") if v] if override.is_list else value)  # JSON strings are TOML strings
        tables.setdefault(table, []).append(f"{key} = {rendered}")
    tables["aws"].insert(0, f"conn_id = {json.dumps(conn_id)}")
    lines = [f"# mlbatch settings from the outputs of CloudFormation stack {stack_name!r}",
             "# (mlbatch settings --from-stack). No secrets: credentials come from the connection."]
    for table, entries in tables.items():
        lines += ["", f"[{table}]", *entries]
    return "\n".join(lines) + "\n"


def as_env(values: dict[Override, str], stack_name: str) -> str:
    lines = [f"# mlbatch settings from the outputs of CloudFormation stack {stack_name!r}"]
    for override, value in values.items():
        name = ARTIFACTS_ENV if override.path == "artifacts.root" else override.env
        lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n"

