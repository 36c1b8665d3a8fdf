"""What AWS Batch would refuse in a spec, found at lint time: a timeout under its minimum.

Imported by the spec linter without Airflow or boto3: constants and the spec models only.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from mlbatch.spec.checks import Issue

if TYPE_CHECKING:
    from mlbatch.spec.models import StepDefaults, StepSpec

MIN_BATCH_TIMEOUT_S = 60  # AWS Batch rejects a shorter attemptDurationSeconds
MAX_ARRAY_SIZE = 10_000  # the largest AWS Batch array job (the spec's own shard cap is the same)


def spec_checks(name: str, step: StepSpec, defaults: StepDefaults) -> list[Issue]:
    from mlbatch.backends.aws.images import image_reference_issues
    from mlbatch.spec.models import setting_at

    timeout = step.timeout or defaults.timeout
    if timeout.total_seconds() >= MIN_BATCH_TIMEOUT_S:
        return image_reference_issues(name, step, defaults)
    return image_reference_issues(name, step, defaults) + [Issue(setting_at(name, step, "timeout"), f"step '{name}' runs on AWS Batch, whose shortest timeout "
                  f"is {MIN_BATCH_TIMEOUT_S}s; got {timeout.total_seconds():g}s", "use timeout: 1m or more")]
