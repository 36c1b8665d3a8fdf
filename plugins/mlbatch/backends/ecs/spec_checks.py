"""What Amazon ECS would refuse in a spec, found at lint time: Fargate's task sizes, and no GPU on Fargate Spot.

Imported by the spec linter without Airflow or boto3: keep it to fargate (pure) and the spec models.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from mlbatch.backends.ecs import fargate
from mlbatch.spec.checks import Issue

if TYPE_CHECKING:
    from mlbatch.spec.models import StepDefaults, StepSpec


def spec_checks(name: str, step: StepSpec, defaults: StepDefaults) -> list[Issue]:
    """A command step's image by its registry, then the task size."""
    from mlbatch.backends.aws.images import image_reference_issues

    return image_reference_issues(name, step, defaults) + _size_checks(name, step, defaults)


def _size_checks(name: str, step: StepSpec, defaults: StepDefaults) -> list[Issue]:
    """Fargate runs only its own task sizes and no GPUs; GPU steps go to the EC2 GPU capacity provider."""
    from mlbatch.spec.models import setting_at, step_resources

    resources = step_resources(step, defaults)
    if resources.gpu:
        if (step.capacity or defaults.capacity) == "spot":
            return [Issue(setting_at(name, step, "capacity"),
                          f"step '{name}' asks for {resources.gpu} GPU, but Fargate (Spot) has no GPUs",
                          "use capacity: on-demand (GPU steps run on the EC2 GPU capacity provider), "
                          "or backend: batch with queue: gpu-spot")]
        return []
    if fargate.is_valid(resources.vcpu, resources.memory):
        return []
    size = fargate.nearest(resources.vcpu, resources.memory)
    return [Issue(setting_at(name, step, "resources"), f"step '{name}' runs on Fargate, which has no task size "
                  f"{fargate.format_size(resources.vcpu, resources.memory)}",
                  f"use the nearest Fargate size, resources: {fargate.format_size(*size)}")]
