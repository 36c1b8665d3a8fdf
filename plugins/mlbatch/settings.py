"""Deployment settings: where the AWS side of a deployment lives. Specs never name accounts.

One file, `mlbatch.toml` at the project root (or the path in MLBATCH_SETTINGS), and any
value overridden by an environment variable named MLBATCH_{SECTION}_{FIELD}
(MLBATCH_AWS_REGION, MLBATCH_IMAGE_TAG, MLBATCH_BATCH_QUEUE_GPU_SPOT, ...), so a
deployment can keep the file in git and set the per-environment values in its env.

Read when a step runs or `deploy` runs, never at DAG parse time. No secrets here:
credentials come from the Airflow connection named by `aws.conn_id` (or the role of
the machine), never from this file.
"""
from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlbatch.spec.fields import QUEUE_ROLES, Duration, QueueRole

SETTINGS_ENV = "MLBATCH_SETTINGS"
SETTINGS_FILE = "mlbatch.toml"


class SettingsError(ValueError):
    """The settings are missing something a step needs; the message says what to set where."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AwsSettings(_Section):
    conn_id: str = "aws_default"  # Airflow connection: credentials (or none: the machine's role), endpoint
    region: str | None = None  # None: the connection's region
    job_role_arn: str | None = None  # what the worker may do (read/write the artifact prefix): Batch job / ECS task role
    execution_role_arn: str | None = None  # what Batch/ECS may do for it (pull the image, write logs)


class ImageSettings(_Section):
    repository: str = "mlbatch-worker"  # e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlbatch-worker
    tag: str = "latest"  # `deploy --image-tag` registers definitions for another tag


class BatchSettings(_Section):
    queues: dict[QueueRole, str] = Field(default_factory=dict)  # queue role -> job queue name or ARN
    log_group: str = "/aws/batch/job"  # Batch's default group
    definition_prefix: str = "mlbatch"  # job definitions are named {prefix}-{variant}
    spot_retries: int = Field(3, ge=0, le=9)  # Batch-internal retries of a reclaimed spot host
    poll_interval: Duration = timedelta(seconds=15)
    deferrable: bool = True  # wait in the triggerer, not in a worker slot (steps may say deferrable: false)


FargateCapacity = Literal["on-demand", "spot", "gpu"]


class EcsSettings(_Section):
    cluster: str = "mlbatch"
    subnets: list[str] = Field(default_factory=list)  # awsvpc networking of every task
    security_groups: list[str] = Field(default_factory=list)
    assign_public_ip: bool = False  # True only in public subnets without a NAT gateway
    # capacity -> capacity provider: Fargate for CPU steps, an EC2 provider with GPU instances for GPU steps
    capacity_providers: dict[FargateCapacity, str] = Field(
        default_factory=lambda: {"on-demand": "FARGATE", "spot": "FARGATE_SPOT"})
    log_group: str = "/ecs/mlbatch"
    definition_prefix: str = "mlbatch-ecs"  # task definition families are {prefix}-{variant}
    poll_interval: Duration = timedelta(seconds=15)
    deferrable: bool = True

    def capacity_provider(self, capacity: str) -> str:
        try:
            return self.capacity_providers[capacity]  # type: ignore[index]
        except KeyError:
            raise SettingsError(
                f"no ECS capacity provider for {capacity!r}: set [ecs.capacity_providers] {capacity} = \"<name>\" "
                "in the settings (GPU steps need an EC2 capacity provider whose instances have GPUs)") from None


class ArtifactSettings(_Section):
    root: str | None = None  # s3://bucket/prefix; MLBATCH_ARTIFACTS wins


class Settings(_Section):
    aws: AwsSettings = AwsSettings()
    image: ImageSettings = ImageSettings()
    batch: BatchSettings = BatchSettings()
    ecs: EcsSettings = EcsSettings()
    artifacts: ArtifactSettings = ArtifactSettings()
    source: str = "defaults"  # where they were read from, for messages

    def queue(self, role: str) -> str:
        try:
            return self.batch.queues[role]  # type: ignore[index]
        except KeyError:
            env = f"MLBATCH_BATCH_QUEUE_{role.upper().replace('-', '_')}"
            raise SettingsError(
                f"no AWS Batch job queue for role {role!r} in {self.source}: "
                f"set [batch.queues] {role} = \"<queue name>\" there, or {env}"
            ) from None


def settings_path(project_root: Path) -> Path:
    return Path(os.environ.get(SETTINGS_ENV) or project_root / SETTINGS_FILE)


def load_settings(path: Path | None = None) -> Settings:
    """The settings file (absent: defaults) with MLBATCH_* environment overrides applied."""
    if path is None:
        from mlbatch.run.paths import PROJECT_ROOT

        path = settings_path(PROJECT_ROOT)
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    _apply_env(data, os.environ)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SettingsError(f"{path}: {problems}") from None
    return settings.model_copy(update={"source": str(path) if path.is_file() else f"defaults ({path} not found)"})


def _apply_env(data: dict[str, Any], env: os._Environ[str] | dict[str, str]) -> None:
    for section, model in Settings.model_fields.items():
        annotation = model.annotation
        if not isinstance(annotation, type) or not issubclass(annotation, _Section):
            continue
        for name in annotation.model_fields:
            if name == "queues":
                for role in QUEUE_ROLES:
                    value = env.get(f"MLBATCH_BATCH_QUEUE_{role.upper().replace('-', '_')}")
                    if value:
                        data.setdefault(section, {}).setdefault("queues", {})[role] = value
                continue
            if name == "capacity_providers":
                for capacity in ("on-demand", "spot", "gpu"):
                    value = env.get(f"MLBATCH_ECS_CAPACITY_{capacity.upper().replace('-', '_')}")
                    if value:
                        data.setdefault(section, {}).setdefault(name, {})[capacity] = value
                continue
            value = env.get(f"MLBATCH_{section}_{name}".upper())
            if value:
                is_list = annotation.model_fields[name].annotation == list[str]
                data.setdefault(section, {})[name] = [v.strip() for v in value.split(",") if v.strip()] if is_list else value
