"""The container of one shard, from the request alone: limits, env, labels, hardening, mounts, the user."""
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
    assert kwargs["network_mode"] == "none"  # no network unless [docker] network says so
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


def _step_command(output: str, **params) -> list[str]:
    from workers import wire

    return wire.run_command(wire.step_request(worker="table.load" if params else "check.noop", params=params,
                                              inputs={}, output=output, shard_count=5))


def test_every_container_is_hardened_whatever_the_request() -> None:
    kwargs = container_kwargs(_request(), 0, HOST)
    assert kwargs["user"] == "10001:10001"  # the image's own user: never root
    assert kwargs["cap_drop"] == ["ALL"] and kwargs["security_opt"] == ["no-new-privileges:true"]
    assert kwargs["pids_limit"] == 1024 and kwargs["read_only"] is True
    assert kwargs["tmpfs"] == {"/tmp": "rw,nosuid,nodev,size=3072m,mode=1777"}  # scratch within the budget
    assert kwargs["environment"]["HOME"] == "/tmp"  # the image's home is on the read-only root
    configured = container_kwargs(_request(), 0, HostFacts(cpus=8, user="2000:2000", pids_limit=64))
    assert (configured["user"], configured["pids_limit"]) == ("2000:2000", 64)


def test_the_artifact_root_is_read_only_and_only_the_shards_own_folder_writable(tmp_path: Path) -> None:
    output = f"{tmp_path}/churn/train/abc"
    kwargs = container_kwargs(_request(tmp_path, command=_step_command(output)), 3, HOST)
    root = str(tmp_path.resolve())
    assert kwargs["volumes"] == {root: {"bind": root, "mode": "ro"},
                                 f"{root}/churn/train/abc/shard-00003": {"bind": f"{root}/churn/train/abc/shard-00003",
                                                                         "mode": "rw"}}
    info = os.stat(tmp_path)
    assert kwargs["user"] == (f"{info.st_uid}:{info.st_gid}" if info.st_uid else "10001:10001")  # never root
    assert "working_dir" not in kwargs


def test_the_container_user_is_the_roots_owner_unless_root_owns_it(tmp_path: Path) -> None:
    from mlbatch.backends.docker.isolation import container_user

    info = os.stat(tmp_path)
    assert container_user(Path("/"), None) == "10001:10001"  # root's folder: the image's user, never uid 0
    assert container_user(tmp_path, "3000:3000") == "3000:3000"
    if info.st_uid:
        assert container_user(tmp_path, None) == f"{info.st_uid}:{info.st_gid}"


def test_local_sources_outside_the_root_are_mounted_read_only_at_their_path(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "digits.csv").write_text("a,b\n1,2\n")
    command = _step_command("s3://b/p/churn/train/abc", source="data/digits.csv", label="b")
    kwargs = container_kwargs(_request(command=command), 0, HOST)
    source = str((tmp_path / "data" / "digits.csv").resolve())
    assert kwargs["volumes"] == {source: {"bind": source, "mode": "ro"}}
    assert kwargs["working_dir"] == str(tmp_path)  # the relative path resolves to the same file
    missing = container_kwargs(_request(command=_step_command("s3://b/p/x", source="nope.csv", label="b")), 0, HOST)
    assert "volumes" not in missing  # the worker reports a missing source as bad input


def test_writable_folders_are_made_before_the_start_for_the_containers_user(tmp_path: Path) -> None:
    from mlbatch.backends.docker.isolation import prepare_writable

    shard = tmp_path / "b" / "s" / "k" / "shard-00000"
    prepare_writable({"user": "10001:10001", "volumes": {str(tmp_path): {"bind": str(tmp_path), "mode": "ro"},
                                                         str(shard): {"bind": str(shard), "mode": "rw"}}})
    info = shard.stat()
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (10001, 10001)
        assert tmp_path.stat().st_uid == 0  # the parents stay the operator's
    else:
        assert info.st_mode & 0o777 == 0o777


def test_a_relative_artifact_root_runs_from_the_same_directory(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "artifacts").mkdir()
    kwargs = container_kwargs(_request(env={"MLBATCH_ARTIFACTS": "artifacts"}), 0, HOST)
    assert kwargs["working_dir"] == str(tmp_path)
    assert list(kwargs["volumes"]) == [str((tmp_path / "artifacts").resolve())]


def test_an_object_store_root_mounts_nothing() -> None:
    kwargs = container_kwargs(_request(), 0, HOST)
    assert "volumes" not in kwargs
    assert local_artifact_dir("s3://bucket/prefix") is None
    assert local_artifact_dir("memory://x") is None
    assert local_artifact_dir("file:///data/a") == Path("/data/a")
    assert local_artifact_dir("/data/a") == Path("/data/a")
    assert "volumes" not in container_kwargs(_request(env={"MLBATCH_ARTIFACTS": ""}), 0, HOST)  # not the cwd


def test_docker_settings_take_mlbatch_docker_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from mlbatch.settings import SettingsError, load_settings

    monkeypatch.setenv("MLBATCH_DOCKER_NETWORK", "host")
    monkeypatch.setenv("MLBATCH_DOCKER_PASS_ENV", "AWS_ENDPOINT_URL, AWS_REGION")
    monkeypatch.setenv("MLBATCH_DOCKER_HOST", "ssh://ml@gpu-box")
    docker = load_settings(tmp_path / "none.toml").docker
    assert (docker.network, docker.pass_env, docker.host) == ("host", ["AWS_ENDPOINT_URL", "AWS_REGION"],
                                                              "ssh://ml@gpu-box")
    monkeypatch.setenv("MLBATCH_DOCKER_NETWORK", "bridge")  # never the bridge network
    with pytest.raises(SettingsError, match="docker.network"):
        load_settings(tmp_path / "none.toml")
    monkeypatch.delenv("MLBATCH_DOCKER_NETWORK")
    assert load_settings(tmp_path / "none.toml").docker.network == "none"  # no network by default
    monkeypatch.setenv("MLBATCH_DOCKER_USER", "0:0")  # never root
    with pytest.raises(SettingsError, match="docker.user"):
        load_settings(tmp_path / "none.toml")


def test_a_remote_docker_host_gets_vcpu_slots_of_its_own_size(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    from mlbatch.backends.docker.client import host_slots
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


@pytest.mark.parametrize(("step", "setting", "expected"), [
    (None, "none", "none"), (None, "host", "host"),  # a step that says nothing gets [docker] network
    ("host", "none", "host"), ("none", "host", "none"),  # a step's own network wins over the setting
])
def test_the_steps_network_wins_over_the_setting(step, setting, expected) -> None:
    kwargs = container_kwargs(_request(network=step), 0, HostFacts(cpus=8, network=setting))
    assert kwargs["network_mode"] == expected


def test_a_request_never_carries_the_bridge_network() -> None:
    with pytest.raises(ValueError, match="network"):
        _request(network="bridge")
