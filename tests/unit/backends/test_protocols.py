"""Every backend satisfies the Protocol the operator types it against, and only that one."""
from __future__ import annotations

import pytest

from mlbatch.backends import KNOWN_BACKENDS, get_backend
from mlbatch.backends.protocols import Backend, Progress, RemoteBackend

REMOTE = {"batch", "ecs"}


@pytest.mark.parametrize("name", KNOWN_BACKENDS)
def test_each_backend_has_one_shape(name: str) -> None:
    from mlbatch.backends.aws_batch.backend import AwsBatchBackend
    from mlbatch.backends.docker import DockerBackend
    from mlbatch.backends.ecs.backend import EcsBackend
    from mlbatch.backends.local import LocalBackend

    classes = {"local": LocalBackend, "docker": DockerBackend, "batch": AwsBatchBackend, "ecs": EcsBackend}
    cls = classes[name]
    members = {m for m in dir(cls) if not m.startswith("_")}
    assert {"run", "cancel"} <= members
    remote_members = {"submit", "wait", "trigger", "finish", "handle_type", "deferrable_default"}
    assert (remote_members <= members) == (name in REMOTE)


def test_local_backend_is_a_backend_not_a_remote_one() -> None:
    backend = get_backend("local", log=lambda line: None)
    assert isinstance(backend, Backend)
    assert not isinstance(backend, RemoteBackend)


def test_progress_rides_in_an_event_as_a_string() -> None:
    assert Progress("not_started") is Progress.not_started
    assert Progress.done == "done"
    assert [p.value for p in Progress if not p.finished] == ["waiting"]
