"""What a step's own code can reach in a container of the docker backend, tried as an attacker would.

The step runs the worker image's real worker (check.noop) after a script that first tries, from inside
the step: a service on this machine's 127.0.0.1 (where the metadata DB listens), running as root,
overwriting or removing another batch's model, writing to the image's filesystem, raw sockets and
chown, and forking past the pids limit. Each is refused, and the step's own output still commits.
Only a step that says `network: host` reaches that service; its own `network: none` wins over the setting.
The same worker's peak memory is compared with the local backend's.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from mlbatch.backends.docker import DockerBackend
from mlbatch.backends.jobs import JobRequest
from mlbatch.backends.local import LocalBackend
from mlbatch.backends.slots import LocalSlots
from mlbatch.settings import DockerSettings
from workers import wire
from workers.artifacts import commit_step, read_step_manifest

pytestmark = pytest.mark.containers

PROJECT = Path(__file__).resolve().parents[2]
PIDS_LIMIT = 64
# `python -c ATTACK run --request JSON`: tries everything, prints what happened, then runs the worker as
# the image's entrypoint would (python -m workers run --request JSON)
ATTACK = r'''
import json, os, runpy, socket, sys
tried = {"uid": os.getuid()}
def attempt(name, action):
    try:
        action()
        tried[name] = "done"
    except Exception as error:
        tried[name] = f"refused: {type(error).__name__}: {error}"
def write(path):
    with open(path, "wb") as handle:
        handle.write(b"not a model")
def fork_many():
    children = []
    try:
        for _ in range(4 * PIDS_LIMIT):
            pid = os.fork()
            if pid == 0:
                os.read(os.open("/dev/zero", os.O_RDONLY), 1)
                import time; time.sleep(60); os._exit(0)
            children.append(pid)
    finally:
        tried["forked"] = len(children)
        for pid in children:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
attempt("metadata_db", lambda: socket.create_connection(("127.0.0.1", int(os.environ["DB_PORT"])), timeout=3).close())
attempt("overwrite_other_batch", lambda: write(os.environ["OTHER_MODEL"]))
attempt("remove_other_batch", lambda: os.unlink(os.environ["OTHER_MODEL"]))
attempt("write_root", lambda: write("/planted"))
attempt("write_image_home", lambda: write("/home/mlbatch/planted"))
attempt("write_artifact_root", lambda: write(os.path.join(os.environ["MLBATCH_ARTIFACTS"], "planted")))
attempt("raw_socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close())
attempt("chown", lambda: (write("/tmp/mine"), os.chown("/tmp/mine", 0, 0)))
attempt("fork", fork_many)
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
tried.update(no_new_privs=status["NoNewPrivs"].strip(), cap_bounding=status["CapBnd"].strip())
print("ATTACK " + json.dumps(tried), flush=True)
sys.argv = ["workers", *sys.argv[1:]]
runpy.run_module("workers", run_name="__main__", alter_sys=True)
'''.replace("PIDS_LIMIT", str(PIDS_LIMIT))


def _request(image: str, output: Path, worker: str, params: dict[str, Any], **changes: Any) -> JobRequest:
    step = wire.step_request(worker=worker, params=params, inputs={}, output=str(output), shard_count=1)
    fields = dict(name="victim.step", image=image, command=wire.run_command(step), memory_mib=512,
                  env={"MLBATCH_ARTIFACTS": str(output.parents[2]), "MLBATCH_TRY_NUMBER": "1"},
                  identity=uuid.uuid4().hex, tags={"dag": "victim", "step": "step", "run": "r1", "try": "1"})
    fields.update(changes)
    return JobRequest(**fields)


def _attack(image: str, tmp_path: Path, settings: DockerSettings, **changes: Any) -> dict[str, Any]:
    """One docker-backend step that attacks, then does its own work; what it saw, its result and the files."""
    root = tmp_path / "artifacts"
    other = root / "other_batch" / "train" / "k0" / "shard-00000"
    other.mkdir(parents=True)
    model = other / "model.pkl"
    model.write_bytes(b"the other batch's model")
    os.chown(model, 10001, 10001) if os.geteuid() == 0 else None  # as that batch's container wrote it
    output = root / "victim" / "step" / "k1"
    lines: list[str] = []
    with socket.socket() as db:  # where Airflow's metadata DB listens on a single machine
        db.bind(("127.0.0.1", 0))
        db.listen()
        request = _request(image, output, "check.noop", {}, entrypoint=["python", "-c", ATTACK], **changes)
        request = request.model_copy(update={"env": {**request.env, "DB_PORT": str(db.getsockname()[1]),
                                                     "OTHER_MODEL": str(model)}})
        backend = DockerBackend(log=lines.append, settings=settings, slots=LocalSlots(2, tmp_path / "slots"))
        result = backend.run(request)
    seen = [json.loads(line.split("ATTACK ", 1)[1]) for line in lines if "ATTACK " in line]
    assert seen, "\n".join(lines)
    return {"tried": seen[0], "result": result, "log": "\n".join(lines), "model": model, "output": output,
            "root": root}


@pytest.fixture(scope="module")
def attack(worker_image: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A step that says nothing of its network, under the default settings ([docker] network: none)."""
    return _attack(worker_image, tmp_path_factory.mktemp("isolation"), DockerSettings(pids_limit=PIDS_LIMIT))


def test_the_step_cannot_reach_a_service_on_the_hosts_loopback(attack: dict[str, Any]) -> None:
    assert attack["tried"]["metadata_db"].startswith("refused"), attack["log"]


@pytest.mark.parametrize(("step", "setting", "reached"), [("host", "none", True), ("none", "host", False)])
def test_the_steps_own_network_wins_over_the_setting(worker_image: str, tmp_path: Path, step: str, setting: str,
                                                     reached: bool) -> None:
    """`network: host` in a step that needs it reaches the loopback service; `network: none` never does."""
    seen = _attack(worker_image, tmp_path, DockerSettings(pids_limit=PIDS_LIMIT, network=setting), network=step)
    assert (seen["tried"]["metadata_db"] == "done") is reached, seen["log"]
    assert seen["result"].ok, seen["log"]


def test_the_step_runs_as_a_user_that_is_not_root_without_capabilities(attack: dict[str, Any]) -> None:
    tried = attack["tried"]
    assert tried["uid"] != 0, attack["log"]
    assert tried["cap_bounding"] == "0000000000000000" and tried["no_new_privs"] == "1"
    assert tried["raw_socket"].startswith("refused") and tried["chown"].startswith("refused")


def test_the_step_cannot_overwrite_or_remove_another_batchs_output(attack: dict[str, Any]) -> None:
    tried = attack["tried"]
    assert "Read-only file system" in tried["overwrite_other_batch"], attack["log"]
    assert "Read-only file system" in tried["remove_other_batch"]
    assert "Read-only file system" in tried["write_artifact_root"]
    assert attack["model"].read_bytes() == b"the other batch's model"


def test_the_image_filesystem_is_read_only(attack: dict[str, Any]) -> None:
    assert attack["tried"]["write_root"].startswith("refused"), attack["log"]
    assert "Read-only file system" in attack["tried"]["write_image_home"]  # the image user's own home


def test_the_step_cannot_fork_past_its_pids_limit(attack: dict[str, Any]) -> None:
    assert attack["tried"]["fork"].startswith("refused"), attack["log"]
    assert attack["tried"]["forked"] < PIDS_LIMIT


def test_the_steps_own_output_still_commits_and_the_operator_owns_the_rest(attack: dict[str, Any]) -> None:
    assert attack["result"].ok, attack["log"]
    output: Path = attack["output"]
    manifest = commit_step(str(output), 1)  # the operator's commit, beside what the container wrote
    assert read_step_manifest(str(output)) == manifest
    shard = output / "shard-00000"
    renamed = output / "moved"
    shard.rename(renamed)  # what a cleanup or a re-run does with a folder a container wrote
    for path in sorted(renamed.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    renamed.rmdir()


def test_peak_memory_in_a_container_matches_the_local_backend(worker_image: str, tmp_path: Path) -> None:
    """The same worker, 300 MiB for a moment: the kernel's marks in the container and the local peak agree."""
    params = {"mib": 300, "hold_seconds": 0}
    root = tmp_path / "artifacts"
    local_request = _request(worker_image, root / "m" / "local" / "k", "check.memory", params, memory_mib=1024)
    local_request = local_request.model_copy(update={
        "entrypoint": [sys.executable, "-m", "workers"],
        "env": {**local_request.env, "PYTHONPATH": str(PROJECT)}})
    lines: list[str] = []
    local = LocalBackend(log=lines.append, slots=LocalSlots(2, tmp_path / "slots")).run(local_request)
    docker = DockerBackend(log=lines.append, settings=DockerSettings(), slots=LocalSlots(2, tmp_path / "slots")).run(
        _request(worker_image, root / "m" / "docker" / "k", "check.memory", params, memory_mib=1024))
    assert local.ok and docker.ok, "\n".join(lines)
    local_peak, docker_peak = local.outcomes[0].peak_rss_mib, docker.outcomes[0].peak_rss_mib
    assert abs(docker_peak - local_peak) <= 0.05 * local_peak, "\n".join(lines)


def test_a_local_source_outside_the_artifact_root_is_read_through_a_read_only_mount(
        worker_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`source: data/table.csv`, relative to where the task runs, reads the same file as on the local backend."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    rows = "\n".join(f"{i},{i % 7},{i % 2}" for i in range(40))
    (tmp_path / "data" / "table.csv").write_text("id,x,label\n" + rows + "\n")
    output = tmp_path / "artifacts" / "own" / "load" / "k"
    lines: list[str] = []
    result = DockerBackend(log=lines.append, settings=DockerSettings(), slots=LocalSlots(2, tmp_path / "slots")).run(
        _request(worker_image, output, "table.load", {"source": "data/table.csv", "label": "label", "id": "id"}))
    assert result.ok, "\n".join(lines)
    assert commit_step(str(output), 1)["shards"][0]["counts"]["rows"] == 40
