"""What each backend is, as data: the one place that says which backends exist and how they differ.

run/ and spec/ ask these traits instead of comparing backend names. Imported at DAG parse time
and at lint time: the standard library only, never a backend module (each loads when asked for).
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Callable

# Local steps queue in one pool sized to the machine (`mlbatch up` creates it; the env names another).
LOCAL_POOL = os.environ.get("MLBATCH_LOCAL_POOL", "mlbatch_local")


@dataclass(frozen=True)
class BackendInfo:
    """A backend's traits: where its workers run, what they can see, what it bills, how it is linted."""

    name: str  # the spec's `backend:` value
    target: str  # "module:Class" of the backend, imported by get_backend
    on_this_machine: bool  # runs this checkout's workers/ as processes here: the image is not used
    in_containers: bool  # each shard runs in a container of the step's image
    needs_object_store: bool  # its workers cannot see this machine's disk: the artifact root must be s3://
    bills_gpu: bool  # a GPU step always gets (and pays for) the GPU it asked for
    pool: str | None = None  # the Airflow pool its steps queue in; None: the default pool
    spec_checks: str | None = None  # "module:function": (step name, StepSpec, StepDefaults) -> [Issue]
    priced_as: str = "fargate"  # the cost estimate's rates: "fargate" (vCPU- and GB-hours) or "ec2" (vCPU-hours)
    image_digest: str | None = None  # "module:function": (image, warn) -> "image:<digest>", for the cache key
    sets_network: bool = False  # a step's `network:` sets its containers' network (else the platform decides)

    def load_spec_checks(self) -> Callable[..., list[Any]] | None:
        return _load(self.spec_checks) if self.spec_checks else None

    def load_image_digest(self) -> Callable[[str, Callable[..., None]], str] | None:
        """How this backend names the exact image a command step runs (None: it runs no image)."""
        return _load(self.image_digest) if self.image_digest else None


def _load(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


BACKEND_INFO: dict[str, BackendInfo] = {info.name: info for info in (
    BackendInfo("local", "mlbatch.backends.local:LocalBackend", on_this_machine=True, in_containers=False,
                needs_object_store=False, bills_gpu=False, pool=LOCAL_POOL),
    BackendInfo("docker", "mlbatch.backends.docker:DockerBackend", on_this_machine=False, in_containers=True,
                needs_object_store=False, bills_gpu=True, spec_checks="mlbatch.backends.shared_paths:spec_checks",
                image_digest="mlbatch.backends.docker.images:image_digest", sets_network=True),
    BackendInfo("batch", "mlbatch.backends.aws_batch.backend:AwsBatchBackend", on_this_machine=False,
                in_containers=True, needs_object_store=True, bills_gpu=True, priced_as="ec2",
                spec_checks="mlbatch.backends.aws_batch.spec_checks:spec_checks",
                image_digest="mlbatch.backends.aws.images:image_digest"),
    BackendInfo("ecs", "mlbatch.backends.ecs.backend:EcsBackend", on_this_machine=False, in_containers=True,
                needs_object_store=True, bills_gpu=True, spec_checks="mlbatch.backends.ecs.spec_checks:spec_checks",
                image_digest="mlbatch.backends.aws.images:image_digest"),
)}
KNOWN_BACKENDS: tuple[str, ...] = tuple(BACKEND_INFO)


class UnknownBackendError(ValueError):
    """The name is not a backend."""


def backend_info(name: str) -> BackendInfo:
    """The traits of the backend a spec names ('local', 'docker', 'batch', 'ecs')."""
    try:
        return BACKEND_INFO[name.strip().lower()]
    except KeyError:
        raise UnknownBackendError(
            f"unknown backend {name!r}; expected one of: {', '.join(KNOWN_BACKENDS)}") from None


def load_backend_class(info: BackendInfo) -> type:
    return _load(info.target)


def local_directory(root: str) -> str | None:
    """The directory of an artifact root on this machine's disk (a path or file://), None for an object store."""
    if root.startswith("file://"):
        return root[len("file://"):]
    if "://" in root:
        return None
    return root


def unseen_disk_problem(info: BackendInfo, root: str, *, remote_host: str | None = None) -> str | None:
    """Why `root` cannot hold this backend's outputs: its workers do not see this machine's disk.

    A backend that needs an object store never sees it; a container backend sees it only when its
    host is this machine (`remote_host` names the other host when it is not). None when it is fine.
    """
    if local_directory(root) is None:
        return None
    if info.needs_object_store:
        return (f"backend {info.name!r} runs workers in containers that cannot see this machine's disk, "
                f"but the artifact root is {root!r}: set MLBATCH_ARTIFACTS (or [artifacts] root in mlbatch.toml) "
                "to an s3:// URI the job role can write")
    if remote_host is not None:
        return (f"the artifact root {root} is a path of this machine, but the {info.name} host is {remote_host}: "
                "its containers would write to that path on their own machine: set MLBATCH_ARTIFACTS "
                "(or [artifacts] root in mlbatch.toml) to an s3:// URI")
    return None
