"""What AWS Batch would refuse in a spec, found at lint time: timeouts under its minimum, arrays over its maximum.

Imported by the spec linter without Airflow or boto3: constants and the spec models only.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from mlbatch.spec.checks import Issue

if TYPE_CHECKING:
    from mlbatch.spec.models import StepDefaults, StepSpec

MIN_BATCH_TIMEOUT_S = 60  # AWS Batch rejects a shorter attemptDurationSeconds
MAX_ARRAY_SIZE = 10_000  # the largest AWS Batch array job


def spec_checks(name: str, step: StepSpec, defaults: StepDefaults) -> list[Issue]:
    from mlbatch.spec.models import setting_at

    issues = []
    timeout = step.timeout or defaults.timeout
    if timeout.total_seconds() < MIN_BATCH_TIMEOUT_S:
        issues.append(Issue(setting_at(name, step, "timeout"), f"step '{name}' runs on AWS Batch, whose shortest "
                            f"timeout is {MIN_BATCH_TIMEOUT_S}s; got {timeout.total_seconds():g}s",
                            "use timeout: 1m or more"))
    shards = step.shards if isinstance(step.shards, int) else step.shards.max
    if shards > MAX_ARRAY_SIZE:
        issues.append(Issue(("steps", name, "shards"), f"step '{name}' runs on AWS Batch, whose array jobs hold "
                            f"at most {MAX_ARRAY_SIZE} children; got {shards}", f"use {MAX_ARRAY_SIZE} shards or fewer"))
    return issues
