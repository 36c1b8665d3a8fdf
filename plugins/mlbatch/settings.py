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
from typing import Any, Iterator, Literal, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlbatch.project import PROJECT_ROOT
from mlbatch.spec.fields import QUEUE_ROLES, Duration, QueueRole

SETTINGS_ENV = "MLBATCH_SETTINGS"
SETTINGS_FILE = "mlbatch.toml"


# Marks the fields that name an AWS resource a deployment creates: the CloudFormation stack
# (deploy/cloudformation/mlbatch.yaml) has one output for each (see mlbatch.cli.stack_settings).
AWS_RESOURCE = {"aws_resource": True}
USER_PATTERN = r"^[1-9][0-9]*(:[0-9]+)?$"  # "uid" or "uid:gid", never uid 0


class SettingsError(ValueError):
    """The settings are missing something a step needs; the message says what to set where."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AwsSettings(_Section):
    conn_id: str = "aws_default"  # Airflow connection: credentials (or none: the machine's role), endpoint
    region: str | None = Field(None, json_schema_extra=AWS_RESOURCE)  # None: the connection's region
    # what the worker may do (read/write the artifact prefix): Batch job / ECS task role
    job_role_arn: str | None = Field(None, json_schema_extra=AWS_RESOURCE)
    # what Batch/ECS may do for it (pull the image, write logs)
    execution_role_arn: str | None = Field(None, json_schema_extra=AWS_RESOURCE)


class ImageSettings(_Section):
    repository: str = Field("mlbatch-worker", json_schema_extra=AWS_RESOURCE)  # e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlbatch-worker
    tag: str = "latest"  # `deploy --image-tag` registers definitions for another tag


class BatchSettings(_Section):
    queues: dict[QueueRole, str] = Field(default_factory=dict, json_schema_extra=AWS_RESOURCE)  # role -> job queue
    log_group: str = Field("/aws/batch/job", json_schema_extra=AWS_RESOURCE)  # Batch's default group
    definition_prefix: str = "mlbatch"  # job definitions are named {prefix}-{variant}
    spot_retries: int = Field(3, ge=0, le=9)  # Batch-internal retries of a reclaimed spot host
    poll_interval: Duration = timedelta(seconds=15)
    deferrable: bool = True  # wait in the triggerer, not in a worker slot (steps may say deferrable: false)


FargateCapacity = Literal["on-demand", "spot", "gpu"]


class EcsSettings(_Section):
    cluster: str = Field("mlbatch", json_schema_extra=AWS_RESOURCE)
    subnets: list[str] = Field(default_factory=list, json_schema_extra=AWS_RESOURCE)  # awsvpc networking of every task
    security_groups: list[str] = Field(default_factory=list, json_schema_extra=AWS_RESOURCE)
    assign_public_ip: bool = False  # True only in public subnets without a NAT gateway
    # capacity -> capacity provider: Fargate for CPU steps, an EC2 provider with GPU instances for GPU steps
    capacity_providers: dict[FargateCapacity, str] = Field(
        default_factory=lambda: {"on-demand": "FARGATE", "spot": "FARGATE_SPOT"})
    log_group: str = Field("/ecs/mlbatch", json_schema_extra=AWS_RESOURCE)
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


DockerNetwork = Literal["host", "none"]


class DockerSettings(_Section):
    # None: DOCKER_HOST, else the local socket (unix:///var/run/docker.sock); e.g. ssh://user@gpu-box
    host: str | None = None
    # none (the default): no network at all, enough for a local artifact root and local sources;
    # host: a worker reaches object stores and every service of this machine on 127.0.0.1 (the
    # metadata DB included), for steps that need a network. Never Docker's bridge network.
    network: DockerNetwork = "none"
    # "uid:gid" each container runs as; None: the artifact root's owner, or the image's own user
    # 10001:10001 when root owns it. Never uid 0.
    user: str | None = Field(None, pattern=USER_PATTERN)
    pids_limit: int = Field(1024, ge=16)  # processes and threads of one container (a fork bomb stops there)
    pull: bool = False  # pull an image the Docker host lacks (False: fail at once, "build the worker image")
    # names of variables of the task's environment handed to each container (e.g. AWS_ENDPOINT_URL
    # for an s3:// artifact root); nothing else of it reaches a container
    pass_env: list[str] = Field(default_factory=list)


class LocalSettings(_Section):
    # "uid:gid" each local worker runs as when the task process is root (a root worker may read its
    # task process's environment through /proc); None: the artifact root's owner, or 10001:10001
    # when root owns it. Never uid 0. Ignored when Airflow runs as another user (its workers run as it).
    user: str | None = Field(None, pattern=USER_PATTERN)


class ArtifactSettings(_Section):
    root: str | None = Field(None, json_schema_extra=AWS_RESOURCE)  # s3://bucket/prefix; MLBATCH_ARTIFACTS wins


class TrackingSettings(_Section):
    mlflow: bool = True  # record model steps in MLflow (MLFLOW_TRACKING_URI, else a store under the artifact root)


class PriceSettings(_Section):
    """USD prices for the mlbatch page's cost estimates (mlbatch.ui.pricing). Defaults: AWS's public
    on-demand list prices in us-east-1 (Linux); spot prices move: set yours."""

    vcpu_hour: float = Field(0.04048, ge=0)  # Fargate, per vCPU-hour (ECS; local and docker steps priced so too)
    gb_hour: float = Field(0.004445, ge=0)  # Fargate, per GB of memory per hour
    spot_vcpu_hour: float = Field(0.01334, ge=0)  # Fargate Spot (about 70% off Fargate)
    spot_gb_hour: float = Field(0.001465, ge=0)
    ec2_vcpu_hour: float = Field(0.048, ge=0)  # AWS Batch CPU on m6i: $0.192/h for 4 vCPU, memory included
    ec2_spot_vcpu_hour: float = Field(0.0168, ge=0)  # m6i spot, about 35% of on-demand
    gpu_type: str = "g5.xlarge"  # the GPU instance a GPU step holds (1 NVIDIA A10G)
    gpu_hour: float = Field(1.006, ge=0)  # its on-demand price per hour
    gpu_spot_hour: float = Field(0.402, ge=0)  # its spot price, about 40% of on-demand


class Settings(_Section):
    aws: AwsSettings = AwsSettings()
    image: ImageSettings = ImageSettings()
    batch: BatchSettings = BatchSettings()
    ecs: EcsSettings = EcsSettings()
    docker: DockerSettings = DockerSettings()
    local: LocalSettings = LocalSettings()
    artifacts: ArtifactSettings = ArtifactSettings()
    tracking: TrackingSettings = TrackingSettings()
    prices: PriceSettings = PriceSettings()
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


class Override(NamedTuple):
    """One MLBATCH_{SECTION}_{FIELD} environment override (key: the entry of a mapping field)."""

    env: str
    section: str
    field: str
    key: str | None = None

    @property
    def path(self) -> str:
        return ".".join(filter(None, (self.section, self.field, self.key)))

    @property
    def is_list(self) -> bool:  # a comma-separated value: MLBATCH_ECS_SUBNETS=subnet-a,subnet-b
        return self.key is None and _section_model(self.section).model_fields[self.field].annotation == list[str]

    @property
    def names_aws_resource(self) -> bool:
        extra = _section_model(self.section).model_fields[self.field].json_schema_extra
        return isinstance(extra, dict) and bool(extra.get("aws_resource"))


# Mapping fields take one variable per key: MLBATCH_BATCH_QUEUE_GPU_SPOT, MLBATCH_ECS_CAPACITY_ON_DEMAND
_MAPPING_FIELDS = {"queues": ("QUEUE", QUEUE_ROLES), "capacity_providers": ("CAPACITY", get_args(FargateCapacity))}


def _section_model(section: str) -> type[_Section]:
    return Settings.model_fields[section].annotation  # type: ignore[return-value]


def overrides() -> Iterator[Override]:
    """Every environment variable the settings read, derived from the models."""
    for section, model in Settings.model_fields.items():
        annotation = model.annotation
        if not isinstance(annotation, type) or not issubclass(annotation, _Section):
            continue
        for name in annotation.model_fields:
            if name in _MAPPING_FIELDS:
                word, keys = _MAPPING_FIELDS[name]
                for key in keys:
                    yield Override(f"MLBATCH_{section}_{word}_{key.replace('-', '_')}".upper(), section, name, key)
            else:
                yield Override(f"MLBATCH_{section}_{name}".upper(), section, name)


def _apply_env(data: dict[str, Any], env: os._Environ[str] | dict[str, str]) -> None:
    for override in overrides():
        value = env.get(override.env)
        if not value:
            continue
        section = data.setdefault(override.section, {})
        if override.key is not None:
            section.setdefault(override.field, {})[override.key] = value
        elif override.is_list:
            section[override.field] = [v.strip() for v in value.split(",") if v.strip()]
        else:
            section[override.field] = value
