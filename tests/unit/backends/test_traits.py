"""Backend traits: one table says what each backend is; run/ and spec/ ask it instead of comparing names."""
from __future__ import annotations

import subprocess
import sys

import pytest

from mlbatch.backends import KNOWN_BACKENDS, UnknownBackendError, backend_info, get_backend
from mlbatch.backends.traits import local_directory, unseen_disk_problem
from mlbatch.spec.fields import BACKENDS


def test_the_spec_takes_its_backend_names_from_the_traits():
    assert BACKENDS == KNOWN_BACKENDS == ("local", "docker", "batch", "ecs")


def test_only_the_local_backend_runs_this_checkouts_code_and_queues_in_its_own_pool():
    assert [name for name in KNOWN_BACKENDS if backend_info(name).on_this_machine] == ["local"]
    assert backend_info("local").pool == "mlbatch_local"
    assert [backend_info(name).pool for name in ("docker", "batch", "ecs")] == [None, None, None]


def test_an_unknown_name_says_which_exist():
    with pytest.raises(UnknownBackendError, match="expected one of: local, docker, batch, ecs"):
        backend_info("kubernetes")
    with pytest.raises(UnknownBackendError):
        get_backend("kubernetes")


@pytest.mark.parametrize("root", ["/data/artifacts", "file:///data/artifacts", "relative/dir"])
def test_a_local_artifact_root_fails_every_backend_whose_workers_cannot_see_this_disk(root):
    assert local_directory(root) is not None
    assert "cannot see this machine's disk" in unseen_disk_problem(backend_info("batch"), root)
    assert "cannot see this machine's disk" in unseen_disk_problem(backend_info("ecs"), root)
    assert unseen_disk_problem(backend_info("local"), root) is None
    assert unseen_disk_problem(backend_info("docker"), root) is None  # the engine runs on this machine


def test_a_docker_host_elsewhere_cannot_see_this_disk_either():
    problem = unseen_disk_problem(backend_info("docker"), "/data/a", remote_host="tcp://gpu-box:2376")
    assert "tcp://gpu-box:2376" in problem and "s3://" in problem
    assert unseen_disk_problem(backend_info("docker"), "s3://bucket/a", remote_host="tcp://gpu-box:2376") is None


def test_the_traits_import_nothing_heavy():
    code = ("import sys, mlbatch.backends, mlbatch.spec.fields; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'docker', 'airflow', 'psutil')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
