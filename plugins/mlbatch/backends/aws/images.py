"""The exact image a command step runs on AWS Batch or ECS, for its cache key: the registry's digest.

A ref pinned by @sha256 is its own digest; an Amazon ECR ref is resolved with DescribeImages (through
the Amazon provider's hook: the connection's credentials, region and endpoint); any other tag is
keyed by its name, with a warning, since a rebuilt image pushed under the same tag would look the same.
"""
from __future__ import annotations

import re
from typing import Any, Callable

_PINNED = re.compile(r"@(sha256:[0-9a-f]{64})$")
# ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY[:TAG]
_ECR = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
                  r"(?P<repository>[^:@]+)(?::(?P<tag>[^@]+))?$")
PIN_HINT = "pin image@sha256:... for exact caching"


def image_digest(image: str, warn: Callable[..., None], ecr: Any = None) -> str:
    """'image:sha256:...' for a pinned or ECR ref; 'image-tag:<ref>' otherwise (warned)."""
    if pinned := _PINNED.search(image):
        return f"image:{pinned.group(1)}"
    ecr_ref = _ECR.match(image)
    if ecr_ref is None:
        warn("image %s is not pinned by digest nor in Amazon ECR: a rebuilt image under the same tag is a cache "
             "hit; %s", image, PIN_HINT)
        return f"image-tag:{image}"
    ecr = ecr if ecr is not None else _ecr_client(ecr_ref.group("region"))
    found = ecr.describe_images(registryId=ecr_ref.group("account"), repositoryName=ecr_ref.group("repository"),
                                imageIds=[{"imageTag": ecr_ref.group("tag") or "latest"}])
    return f"image:{found['imageDetails'][0]['imageDigest']}"


def image_reference_issues(name: str, step: Any, defaults: Any) -> list[Any]:
    """A command step's image must name its registry: a short name means the deployment's worker image."""
    from mlbatch.backends.aws.definitions import is_full_reference
    from mlbatch.spec.checks import Issue
    from mlbatch.spec.commands import written_image

    image = written_image(step, defaults)
    if step.command is None or image is None or is_full_reference(image):
        return []
    where = ("steps", name, "image") if step.image is not None else ("defaults", "image")
    return [Issue(where, f"step {name!r} runs its command on AWS in image {image!r}, a short name that means a "
                  "variant of the deployment's worker image there", "name the image with its registry, e.g. "
                  f"123456789012.dkr.ecr.REGION.amazonaws.com/{image}, or pin it: team/score@sha256:...")]


def _ecr_client(region: str) -> Any:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    from mlbatch.settings import load_settings

    return AwsBaseHook(aws_conn_id=load_settings().aws.conn_id, client_type="ecr", region_name=region).get_conn()
