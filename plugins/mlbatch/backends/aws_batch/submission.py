"""A JobRequest as the arguments of one AWS Batch SubmitJob call. Pure: no AWS calls here.

One step try is ONE job: a plain job for one shard, an array job (2..10,000 children)
for more. Array child i runs shard `indices[i]`: the identity when every shard runs,
else the list goes in the environment as ranges ("0-3,7", see workers.wire). A
scattered retry of thousands of shards can still outgrow SubmitJob's 30 KiB payload
quota; past MAX_INLINE_SHARD_MAP the list travels as a file instead, which the backend
writes next to the artifacts.
"""
from __future__ import annotations

import math
import re
from typing import Any

from workers import wire
from workers.wire import encode_ranges

from mlbatch.backends.aws.conventions import job_tags
from mlbatch.backends.aws_batch.spec_checks import MAX_ARRAY_SIZE, MIN_BATCH_TIMEOUT_S
from mlbatch.backends.environment import shard_command, shard_environment
from mlbatch.backends.jobs import JobRequest

MAX_JOB_NAME = 128
MAX_INLINE_SHARD_MAP = 8 * 1024  # characters; the rest of a SubmitJob call is ~2 KiB
# Spot reclaim and host loss show as this status reason; Batch retries them itself, so an
# infrastructure hiccup never costs an Airflow retry. Everything else exits at once and
# the operator classifies it. (At most 5 rules; the last must catch everything.)
RETRY_ON_HOST_LOSS = {"onStatusReason": "Host EC2*", "action": "RETRY"}
EXIT_ON_ANYTHING_ELSE = {"onReason": "*", "action": "EXIT"}

def job_name(request: JobRequest) -> str:
    """Deterministic: the same step and cache key give the same name (letters, digits, - and _)."""
    base = f"{request.name.replace('.', '__')}__{request.identity[:16]}" if request.identity else request.name
    return re.sub(r"[^A-Za-z0-9_-]+", "-", base)[:MAX_JOB_NAME]


def shard_map(request: JobRequest) -> str | None:
    """The array child -> shard list, when children do not simply run shards 0..n-1."""
    indices = request.indices
    if len(indices) == 1 or indices == list(range(len(indices))):
        return None
    return encode_ranges(indices)


def shard_env(request: JobRequest, map_uri: str | None = None) -> dict[str, str]:
    """How each container learns its shard: an index for a plain job, a map (or its file) for an array."""
    indices = request.indices
    if len(indices) == 1:
        return wire.shard_env(request.shard_count, indices[0])
    if (text := shard_map(request)) is None:
        return wire.shard_env(request.shard_count)  # child i runs shard i
    if len(text) <= MAX_INLINE_SHARD_MAP:
        return wire.shard_env(request.shard_count, shard_map=indices)
    if map_uri:
        return wire.shard_env(request.shard_count, shard_map_uri=map_uri)
    raise ValueError(f"{request.name}: the shard list ({len(text)} characters) is too long for SubmitJob; "
                     "pass the URI of a file holding it")


def resource_requirements(request: JobRequest) -> list[dict[str, str]]:
    # EC2 compute environments take whole vCPUs; a fractional budget is rounded up.
    requirements = [
        {"type": "VCPU", "value": str(max(1, math.ceil(request.vcpu)))},
        {"type": "MEMORY", "value": str(request.memory_mib)},
    ]
    if request.gpu:
        requirements.append({"type": "GPU", "value": str(request.gpu)})
    return requirements


def retry_strategy(spot_retries: int) -> dict[str, Any]:
    return {"attempts": 1 + spot_retries, "evaluateOnExit": [RETRY_ON_HOST_LOSS, EXIT_ON_ANYTHING_ELSE]}


def attempt_duration_s(request: JobRequest) -> int | None:
    if request.timeout_s is None:
        return None
    return max(MIN_BATCH_TIMEOUT_S, math.ceil(request.timeout_s))


def submit_job_args(request: JobRequest, *, queue: str, job_definition: str, spot_retries: int,
                    map_uri: str | None = None) -> dict[str, Any]:
    """The keyword arguments of batch.submit_job for this request."""
    size = len(request.indices)
    if size > MAX_ARRAY_SIZE:
        raise ValueError(f"{request.name}: {size} shards in one try; an AWS Batch array holds at most {MAX_ARRAY_SIZE}")
    env = shard_environment(request, shard_env(request, map_uri))
    args: dict[str, Any] = {
        "jobName": job_name(request),
        "jobQueue": queue,
        "jobDefinition": job_definition,
        "containerOverrides": {
            "command": shard_command(request, request.indices[0] if size == 1 else None),
            "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
            "resourceRequirements": resource_requirements(request),
        },
        "retryStrategy": retry_strategy(spot_retries),
        "tags": job_tags(request),
        "propagateTags": True,
    }
    if size > 1:
        args["arrayProperties"] = {"size": size}
    duration = attempt_duration_s(request)
    if duration is not None:
        args["timeout"] = {"attemptDurationSeconds": duration}
    return args
