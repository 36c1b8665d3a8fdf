"""The example worker package's team image: examples/worker-package/Dockerfile, FROM the worker image.

A small layer (the package pip-installed into the worker image's virtualenv), tagged by a hash of the
worker image's tag and every file of the example's build context, so it is built once per content
and a change to the worker image or to the package rebuilds only this layer.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from mlbatch.cli.compose_images import Build, ensure
from tests.worker_packages import EXAMPLE

REPOSITORY = "mlbatch-quality"


def _ignored(part: str) -> bool:
    """What the example's .dockerignore leaves out: caches and what a build leaves in the folder."""
    return part in ("__pycache__", "build") or part.endswith(".egg-info")


def context_files() -> dict[str, Path]:
    """Build context path -> file: the example's folder, less what an install or a test run leaves."""
    files = {}
    for path in sorted(EXAMPLE.rglob("*")):
        relative = path.relative_to(EXAMPLE)
        if path.is_file() and path.suffix != ".pyc" and not any(map(_ignored, relative.parts)):
            files[relative.as_posix()] = path
    return files


def team_build(worker: str, base: str) -> Build:
    """The Dockerfile's build on this checkout's images: FROM `worker`, its pip stage on the Debian `base`."""
    return Build(REPOSITORY, "Dockerfile", context_files(), {"WORKER_IMAGE": worker, "BUILD_IMAGE": base})


def ensure_team_image(client: Any, worker: str, base: str, log: Callable[[str], None] = lambda line: None) -> str:
    """The team image's content tag, built unless it exists already (never the worker image itself)."""
    return ensure(client, team_build(worker, base), log)
