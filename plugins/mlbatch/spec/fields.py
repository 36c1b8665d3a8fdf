"""Field types of the batch spec: names, schedules, sizes and durations, with errors that say the fix."""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal, get_args

from croniter import croniter
from pydantic import AfterValidator, BeforeValidator, Field

from mlbatch.backends.traits import KNOWN_BACKENDS
from mlbatch.spec.checks import SpecValueError, did_you_mean, shown
from mlbatch.spec.units import parse_duration, parse_memory

Backend = Literal[KNOWN_BACKENDS]  # the names come from the backend traits (mlbatch.backends.traits)
BACKENDS: tuple[str, ...] = KNOWN_BACKENDS
QueueRole = Literal["cpu", "gpu", "cpu-spot", "gpu-spot"]  # a job queue by role, named in the settings
QUEUE_ROLES: tuple[str, ...] = get_args(QueueRole)
# A step container's network: none (no interface but loopback) or host (the host's network).
StepNetworkName = Literal["none", "host"]
STEP_NETWORKS: tuple[str, ...] = get_args(StepNetworkName)
Capacity = Literal["on-demand", "spot"]  # ECS: Fargate or Fargate Spot (GPU steps run on the EC2 GPU provider)
BACKEND_ENV = "MLBATCH_BACKEND"
SCHEDULE_PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly")
MAX_SHARDS = 10_000  # the most workers one step fans out to (what a backend allows is its own spec check)
# Names become path parts ({root}/{dag_id}/{step}/...), Airflow ids, container and AWS Batch job
# names: they start with a letter or digit (never "." or ".."; no hidden or parent folder) and are
# short enough that "{dag_id}__{step}__{key:16}" fits AWS Batch's 128-character job name
# (64 + 2 + 40 + 2 + 16 = 124) and any file named after them stays far below 255 bytes.
MAX_DAG_ID = 64
MAX_STEP_NAME = 40
DAG_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,%d}" % (MAX_DAG_ID - 1)
DAG_ID_CHARS = (f"start with a letter or digit, then use only letters, digits, '_', '.' and '-', "
                f"at most {MAX_DAG_ID} characters")
STEP_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,%d}" % (MAX_STEP_NAME - 1)
STEP_NAME_CHARS = (f"start with a letter or digit, then use only letters, digits, '_' and '-', "
                   f"at most {MAX_STEP_NAME} characters")


def _name_check(what: str, pattern: str, fix: str):
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise SpecValueError(f"{what} {shown(value)} is not valid", fix)
        return value
    return check


def _schedule_check(value: str | None) -> str | None:
    if value is None:
        return None
    if value.startswith("@"):
        if value not in SCHEDULE_PRESETS:
            raise SpecValueError(f"unknown schedule preset {shown(value)}", did_you_mean(value, SCHEDULE_PRESETS))
        return value
    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise SpecValueError(
            f"invalid cron expression {shown(value)}",
            "use 5 fields 'minute hour day-of-month month day-of-week' (e.g. '0 3 * * *'), "
            f"a preset ({', '.join(SCHEDULE_PRESETS)}) or null for manual runs",
        )
    return value


def _network_check(value: object) -> object:
    if value is None or value in STEP_NETWORKS:
        return value
    if value == "bridge":
        raise SpecValueError(
            "network 'bridge' is not allowed: a step never gets Docker's bridge network (it reaches the host's "
            "published services and beyond, and the Docker engine may run without one: dockerd --bridge=none)",
            "write network: none (no network, the default) or network: host (for a step that must reach a service)")
    raise SpecValueError(f"unknown network {shown(value)}", "write network: none or network: host")


def _shard_count_check(value: int) -> int:
    if not 1 <= value <= MAX_SHARDS:
        raise SpecValueError(f"shards must be between 1 and {MAX_SHARDS}; got {value}",
                             f"use 1..{MAX_SHARDS}, or fewer larger shards")
    return value


Schedule = Annotated[str | None, AfterValidator(_schedule_check)]
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
MemoryMiB = Annotated[int, BeforeValidator(parse_memory)]
Retries = Annotated[int, Field(ge=0, le=10)]
StepName = Annotated[str, AfterValidator(_name_check("step name", STEP_NAME_PATTERN, STEP_NAME_CHARS))]
DagId = Annotated[str, AfterValidator(_name_check("dag_id", DAG_ID_PATTERN, DAG_ID_CHARS))]
ShardCount = Annotated[int, AfterValidator(_shard_count_check)]
StepNetwork = Annotated[StepNetworkName, BeforeValidator(_network_check)]
ShardsOf = Annotated[str, AfterValidator(_name_check(
    "shards.of", r"[A-Za-z0-9_-]{1,%d}\.[A-Za-z0-9_]{1,64}" % MAX_STEP_NAME,
    "write it as '<step>.<count>', e.g. features.rows"))]
