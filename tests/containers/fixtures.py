"""pytest fixtures of a Docker engine and the images built from this checkout (tests/conftest.py exposes them).

Without an engine the tests that use them skip with one line saying how to start one; under
CI=true a missing engine fails them instead: CI must never pass by skipping the containers.
"""
from __future__ import annotations

import os
from typing import Any

import pytest

from tests.containers import images

CONTAINER_FIXTURES = frozenset({"docker_client", "base_image", "worker_image"})


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """A Docker SDK client of the local engine (or DOCKER_HOST's)."""
    client = images.connect()
    if client is None:
        message = f"no Docker engine: {images.ENABLE_HINT}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: the container tests never skip)", pytrace=False)
        pytest.skip(message)
    yield client
    client.close()


def _build(step: Any) -> str:
    try:
        return step()
    except images.ImageBuildError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def base_image(docker_client: Any) -> str:
    """The tag of the Debian bookworm base (debootstrap + docker import), built once per content."""
    return _build(lambda: images.ensure_base(docker_client))


@pytest.fixture(scope="session")
def worker_image(docker_client: Any, base_image: str) -> str:
    """The tag of the CPU worker image built from Dockerfile.worker on `base_image`."""
    return _build(lambda: images.ensure_worker(docker_client, base_image))


def mark_container_tests(items: list[Any]) -> None:
    """Every test that uses an engine is a `containers` test, marked or not: `-m "not containers"` skips it."""
    for item in items:
        if CONTAINER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.containers)


def run_container_modules_last(items: list[Any]) -> None:
    """Modules with a container test run after every other module, the compose stack's last: on a cold
    machine the images build meanwhile (.ci/run builds them in the background while the suite starts;
    a fixture that needs one first waits on the same build lock). Modules stay whole and in order."""
    def module(item: Any) -> str:
        return item.nodeid.split("::")[0]

    with_containers = {module(item) for item in items if item.get_closest_marker("containers")}
    with_compose = {module(item) for item in items if item.get_closest_marker("compose")}
    items.sort(key=lambda item: (module(item) in with_containers) + (module(item) in with_compose))
