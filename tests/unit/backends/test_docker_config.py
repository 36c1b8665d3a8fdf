"""The container of one shard, from the request alone: limits, env, labels, the artifact mount, the user."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlbatch.backends.docker.config import (
    HostFacts,
    container_kwargs,
    container_labels,
    container_name,
    identity_filter,
    local_artifact_dir,
    passed_environment,
)
from mlbatch.backends.jobs import JobRequest
from mlbatch.backends.threads import THREAD_CAP_VARS

HOST = HostFacts(cpus=8)


def _request(tmp_path: Path | None = None, **changes) -> JobRequest:
    fields = dict(name="churn.train", image="mlbatch-worker:cpu", command=["run", "--request", "{}"], vcpu=2,
                  memory_mib=3072, shard_count=5, identity="0123456789abcdef0123",
                  env={"MLBATCH_TRY_NUMBER": "2", "MLBATCH_ARTIFACTS": str(tmp_path) if tmp_path else "s3://b/p"},
                  tags={"dag": "churn", "step": "train", "run": "manual__1", "try": "2"})
    fields.update(changes)
    return JobRequest(**fields)


def test_hard_limits_come_from_the_request_with_no_swap() -> None:
    kwargs = container_kwargs(_request(), 3, HOST)
    assert kwargs["nano_cpus"] == 2_000_000_000
    assert kwargs["mem_limit"] == kwargs["memswap_limit"] == 3072 * 1024 * 1024
    assert kwargs["network_mode"] == "host"
    assert kwargs["init"] is True


def test_vcpu_above_the_host_is_capped_at_the_host() -> None:
    assert container_kwargs(_request(vcpu=16), 0, HOST)["nano_cpus"] == 8_000_000_000
    assert container_kwargs(_request(vcpu=0.5), 0, HOST)["nano_cpus"] == 500_000_000


def test_image_entrypoint_is_kept_unless_the_request_names_one() -> None:
    kwargs = container_kwargs(_request(), 0, HOST)
    assert kwargs["image"] == "mlbatch-worker:cpu" and kwargs["command"] == ["run", "--request", "{}"]
    assert "entrypoint" not in kwargs  # the worker image's own ENTRYPOINT runs the command
    own = container_kwargs(_request(entrypoint=["python3", "-c"], command=["print(1)"]), 0, HOST)
    assert own["entrypoint"] == ["python3", "-c"] and own["command"] == ["print(1)"]


def test_env_is_the_shards_and_nothing_of_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "never-in-a-container")
    env = container_kwargs(_request(), 4, HostFacts(cpus=8, passed_env={"AWS_ENDPOINT_URL": "http://127.0.0.1:5"}))[
        "environment"]
    assert env["MLBATCH_SHARD_INDEX"] == "4" and env["MLBATCH_SHARD_COUNT"] == "5"
    assert env["MLBATCH_TRY_NUMBER"] == "2" and env["MLBATCH_ARTIFACTS"] == "s3://b/p"
    assert all(env[name] == "2" for name in THREAD_CAP_VARS)
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5"
    assert not {"PATH", "PYTHONPATH", "AWS_SECRET_ACCESS_KEY", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"} & set(env)


def test_pass_env_takes_only_the_named_variables_that_are_set() -> None:
    environ = {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "HOME": "/root"}
    assert passed_environment(["AWS_ENDPOINT_URL", "AWS_REGION"], environ) == {"AWS_ENDPOINT_URL": environ[
        "AWS_ENDPOINT_URL"]}


def test_labels_find_the_shard_again_and_carry_the_tags() -> None:
    labels = container_labels(_request(), 1)
    assert labels["mlbatch.identity"] == "0123456789abcdef0123"
    assert labels["mlbatch.shard"] == "1" and labels["mlbatch.name"] == "churn.train"
    assert labels["mlbatch.dag"] == "churn" and labels["mlbatch.run"] == "manual__1" and labels["mlbatch.try"] == "2"
    assert identity_filter("abc", 1) == {"label": ["mlbatch.identity=abc", "mlbatch.shard=1"]}
    assert identity_filter("abc") == {"label": ["mlbatch.identity=abc"]}


def test_the_name_is_unique_per_identity_and_shard() -> None:
    assert container_name(_request(), 3) == "mlbatch-churn.train-0123456789abcdef-s3"
    assert container_name(_request(name="a b/c"), 0) == "mlbatch-a-b-c-0123456789abcdef-s0"
    assert container_name(_request(identity=""), 0) is None
    assert "name" not in container_kwargs(_request(identity=""), 0, HOST)


def test_a_local_artifact_root_is_mounted_at_its_own_path_and_written_as_its_owner(tmp_path: Path) -> None:
    kwargs = container_kwargs(_request(tmp_path), 0, HOST)
    path = str(tmp_path.resolve())
    assert kwargs["volumes"] == {path: {"bind": path, "mode": "rw"}}
    info = os.stat(tmp_path)
    assert kwargs["user"] == f"{info.st_uid}:{info.st_gid}"
    assert kwargs["environment"]["HOME"] == "/tmp"  # a uid the image may not know still has a writable home
    assert "working_dir" not in kwargs


def test_a_relative_artifact_root_runs_from_the_same_directory(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "artifacts").mkdir()
    kwargs = container_kwargs(_request(env={"MLBATCH_ARTIFACTS": "artifacts"}), 0, HOST)
    assert kwargs["working_dir"] == str(tmp_path)
    assert list(kwargs["volumes"]) == [str((tmp_path / "artifacts").resolve())]


def test_an_object_store_root_mounts_nothing() -> None:
    kwargs = container_kwargs(_request(), 0, HOST)
    assert "volumes" not in kwargs and "user" not in kwargs
    assert local_artifact_dir("s3://bucket/prefix") is None
    assert local_artifact_dir("memory://x") is None
    assert local_artifact_dir("file:///data/a") == Path("/data/a")
    assert local_artifact_dir("/data/a") == Path("/data/a")


def test_docker_settings_take_mlbatch_docker_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from mlbatch.settings import SettingsError, load_settings

    monkeypatch.setenv("MLBATCH_DOCKER_NETWORK", "none")
    monkeypatch.setenv("MLBATCH_DOCKER_PASS_ENV", "AWS_ENDPOINT_URL, AWS_REGION")
    monkeypatch.setenv("MLBATCH_DOCKER_HOST", "ssh://ml@gpu-box")
    docker = load_settings(tmp_path / "none.toml").docker
    assert (docker.network, docker.pass_env, docker.host) == ("none", ["AWS_ENDPOINT_URL", "AWS_REGION"],
                                                              "ssh://ml@gpu-box")
    monkeypatch.setenv("MLBATCH_DOCKER_NETWORK", "bridge")  # never the bridge network
    with pytest.raises(SettingsError, match="docker.network"):
        load_settings(tmp_path / "none.toml")


def test_a_remote_docker_host_gets_vcpu_slots_of_its_own_size(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    from mlbatch.backends.docker.engine import host_slots
    from mlbatch.backends.slots import default_capacity, default_directory

    monkeypatch.setenv("MLBATCH_LOCAL_SLOTS_DIR", str(tmp_path))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    local = host_slots(None, cpus=64)  # this machine's engine: the slots local steps take too
    assert (local.capacity, local.directory) == (default_capacity(), default_directory())
    remote = host_slots("tcp://gpu-box:2376", cpus=64)
    assert remote.capacity == 64 and remote.directory.parent == tmp_path
    assert remote.directory.name.startswith("docker-") and host_slots("ssh://a", 8).directory != remote.directory


def test_the_container_config_does_not_import_the_local_backend():
    import subprocess
    import sys

    code = "import sys, mlbatch.backends.docker.config; print('mlbatch.backends.local' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() \
        == "False"
