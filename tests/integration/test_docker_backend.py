"""The docker backend against the real Docker Engine: limits the kernel enforces, logs, classes, cancel, reattach.

Requests run `python3 -c CODE` in the offline Debian base (tests/containers), which starts in well under a
second; the worker image end to end is in test_docker_e2e.py.
"""
from __future__ import annotations

import json
import re
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from mlbatch.backends.docker import DockerBackend
from mlbatch.backends.docker.config import HostFacts, container_kwargs, identity_filter
from mlbatch.backends.docker.outcome import GPU_FIX
from mlbatch.backends.failures import FailureClass
from mlbatch.backends.jobs import JobRequest
from mlbatch.backends.slots import LocalSlots
from mlbatch.settings import DockerSettings

pytestmark = pytest.mark.containers

WRITE_SHARD = """
import json, os, sys
index = os.environ["MLBATCH_SHARD_INDEX"]
print("hello from shard", index, "of", os.environ["MLBATCH_SHARD_COUNT"], "threads", os.environ["OMP_NUM_THREADS"])
print("a warning", file=sys.stderr)
output = json.loads(sys.argv[2])["output"]  # its own shard folder is the one place it may write
open(os.path.join(output, "shard-%05d" % int(index), "uid"), "w").write(str(os.getuid()))
"""
# shard 0 touches 200 MiB, far over a 64 MiB limit; shard 1 stays small
OOM_SHARD_0 = """
import os
if os.environ["MLBATCH_SHARD_INDEX"] == "0":
    block = bytearray(200 * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
print("shard", os.environ["MLBATCH_SHARD_INDEX"], "done")
"""


class Run:
    """A backend on a private slot directory that records its log lines."""

    def __init__(self, tmp_path: Path, capacity: int = 2) -> None:
        self.lines: list[str] = []
        self.backend = DockerBackend(log=self.lines.append, settings=DockerSettings(), poll_interval_s=0.05,
                                     term_grace_s=2.0, slots=LocalSlots(capacity, tmp_path / "slots"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    root = tmp_path / "artifacts"
    root.mkdir()
    return root


def _request(image: str, code: str, artifacts: Path, **changes: Any) -> JobRequest:
    fields = dict(name="demo.step", image=image, entrypoint=["python3", "-c"], command=[code], memory_mib=256,
                  env={"MLBATCH_ARTIFACTS": str(artifacts), "MLBATCH_TRY_NUMBER": "1"},
                  identity=uuid.uuid4().hex, tags={"dag": "demo", "step": "step", "run": "r1", "try": "1"})
    fields.update(changes)
    return JobRequest(**fields)


def _left(client: Any, identity: str) -> list[Any]:
    return client.containers.list(all=True, filters=identity_filter(identity))


def with_output(code: str, output: Path) -> list[str]:
    """`python3 -c CODE --request JSON`: a command that carries its step's output, as a worker's does."""
    return [code, "--request", json.dumps({"output": str(output)})]


def test_shards_run_as_containers_with_live_logs_and_write_as_a_user_that_is_never_root(
        docker_client: Any, base_image: str, tmp_path: Path, artifacts: Path) -> None:
    run = Run(tmp_path)
    output = artifacts / "demo" / "step" / "k1"
    request = _request(base_image, "", artifacts, shard_count=2, vcpu=1, command=with_output(WRITE_SHARD, output))
    result = run.backend.run(request)
    assert result.ok, run.text
    assert "[shard 0/2] hello from shard 0 of 2 threads 1" in run.lines
    assert "[shard 1/2] a warning" in run.lines
    assert [o.stderr_tail for o in result.outcomes] == [["a warning"], ["a warning"]]
    owner = artifacts.stat().st_uid
    expected = str(owner) if owner else "10001"  # the root's owner, or the image's user when root owns it
    assert (output / "shard-00000" / "uid").read_text() == (output / "shard-00001" / "uid").read_text() == expected
    assert _left(docker_client, request.identity) == []  # exited containers are removed


def test_a_shard_over_its_memory_is_killed_by_the_kernel_and_fails_alone_as_oom(
        docker_client: Any, base_image: str, tmp_path: Path, artifacts: Path) -> None:
    run = Run(tmp_path)
    result = run.backend.run(_request(base_image, OOM_SHARD_0, artifacts, shard_count=2, memory_mib=64))
    by_index = {o.index: o for o in result.outcomes}
    assert by_index[0].failure is FailureClass.oom and by_index[0].exit_code == 137
    assert "killed by the kernel at its 64 MiB memory limit" in by_index[0].reason
    assert by_index[1].ok, run.text
    assert "[shard 1/2] shard 1 done" in run.lines
    assert "class: oom" in run.text
    peak = re.search(r"memory: peak (\d+) MiB of 64 MiB budget", run.text)
    assert peak and int(peak.group(1)) >= 64, run.text  # its RSS counts libraries the cgroup may not


def test_past_its_timeout_the_container_is_stopped_and_the_class_is_timeout(
        docker_client: Any, base_image: str, tmp_path: Path, artifacts: Path) -> None:
    run = Run(tmp_path)
    code = "import time; print('started', flush=True); time.sleep(120)"
    request = _request(base_image, code, artifacts, timeout_s=1.0)
    result = run.backend.run(request)
    outcome = result.outcomes[0]
    assert outcome.failure is FailureClass.timeout and outcome.reason == "ran past its 1s timeout"
    assert "[worker] started" in run.lines
    assert _left(docker_client, request.identity) == []


def test_bad_input_is_read_from_the_containers_stderr(
        docker_client: Any, base_image: str, tmp_path: Path, artifacts: Path) -> None:
    run = Run(tmp_path)
    code = "import sys; print('mlbatch-bad-input: column churn is missing', file=sys.stderr); sys.exit(65)"
    outcome = run.backend.run(_request(base_image, code, artifacts)).outcomes[0]
    assert (outcome.failure, outcome.reason, outcome.exit_code) == (
        FailureClass.bad_input, "column churn is missing", 65)


def test_a_missing_image_is_infrastructure_with_the_build_command(
        docker_client: Any, tmp_path: Path, artifacts: Path) -> None:
    run = Run(tmp_path)
    result = run.backend.run(_request("mlbatch-worker:no-such-tag", "print(1)", artifacts, shard_count=3))
    assert result.outcomes[0].failure is FailureClass.infrastructure
    assert "make images" in result.outcomes[0].reason and "docker pull mlbatch-worker:no-such-tag" in result.outcomes[
        0].reason
    assert result.outcomes[0].final and not result.outcomes[0].retryable  # no retry can bring the image
    assert "retryable: no" in run.text
    assert result.not_started == [1, 2]  # nothing more is started after a shard could not start


def test_a_gpu_step_on_a_host_without_gpus_says_so(
        docker_client: Any, base_image: str, tmp_path: Path, artifacts: Path) -> None:
    if "nvidia" in (docker_client.info().get("Runtimes") or {}):
        pytest.skip("this Docker host has the NVIDIA runtime")
    run = Run(tmp_path)
    outcome = run.backend.run(_request(base_image, "print(1)", artifacts, gpu=1)).outcomes[0]
    assert outcome.failure is FailureClass.infrastructure
    assert outcome.reason.startswith("the Docker host has no GPU for this step") and GPU_FIX in outcome.reason


def test_cancel_stops_and_removes_every_container_of_the_try(
        docker_client: Any, base_image: str, tmp_path: Path, artifacts: Path) -> None:
    run = Run(tmp_path)
    request = _request(base_image, "import time; print('up', flush=True); time.sleep(120)", artifacts,
                       shard_count=2)
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(run.backend.run(request)))
    worker.start()
    while run.lines.count("[shard 0/2] up") + run.lines.count("[shard 1/2] up") < 2:
        assert worker.is_alive(), run.text
        threading.Event().wait(0.05)
    run.backend.cancel()
    worker.join(30)
    assert not worker.is_alive()
    assert [(o.failure, o.reason) for o in results[0].outcomes] == [(FailureClass.infrastructure, "cancelled")] * 2
    assert _left(docker_client, request.identity) == []


def _earlier_try(client: Any, request: JobRequest, index: int) -> Any:
    """The container an earlier try (or a task that was restarted) left running for this shard."""
    kwargs = container_kwargs(request, index, HostFacts(cpus=2))
    container = client.containers.create(**kwargs)
    container.start()
    return container


def test_a_retry_reattaches_to_the_live_container_instead_of_starting_a_duplicate(
        docker_client: Any, base_image: str, tmp_path: Path, artifacts: Path) -> None:
    code = "import time; print('working', flush=True); time.sleep(2); print('finished', flush=True)"
    request = _request(base_image, code, artifacts)
    earlier = _earlier_try(docker_client, request, 0)
    run = Run(tmp_path)
    result = run.backend.run(request.model_copy(update={"command": ["raise SystemExit('a duplicate ran')"]}))
    assert result.ok, run.text
    assert f"[worker] reattached to running container {earlier.short_id}" in run.text
    assert "[worker] finished" in run.lines
    assert _left(docker_client, request.identity) == []


def test_a_finished_container_of_the_identity_is_collected_not_rerun(
        docker_client: Any, base_image: str, tmp_path: Path, artifacts: Path) -> None:
    request = _request(base_image, "print('computed once')", artifacts)
    earlier = _earlier_try(docker_client, request, 0)
    earlier.wait()
    run = Run(tmp_path)
    result = run.backend.run(request.model_copy(update={"command": ["raise SystemExit('rerun')"]}))
    assert result.ok, run.text
    assert f"[worker] collecting finished container {earlier.short_id}" in run.text
    assert "[worker] computed once" in run.lines
    assert _left(docker_client, request.identity) == []


def test_a_failed_earlier_container_is_removed_and_the_shard_runs_again(
        docker_client: Any, base_image: str, tmp_path: Path, artifacts: Path) -> None:
    request = _request(base_image, "raise SystemExit(3)", artifacts)
    _earlier_try(docker_client, request, 0).wait()
    run = Run(tmp_path)
    result = run.backend.run(request.model_copy(update={"command": ["print('second try')"]}))
    assert result.ok, run.text
    assert "[worker] second try" in run.lines and "[worker] started container" in run.text


@pytest.mark.parametrize("network,reached", [("host", True), ("none", False)])
def test_the_network_setting_decides_whether_a_worker_reaches_this_machines_loopback(
        docker_client: Any, base_image: str, tmp_path: Path, artifacts: Path, network: str, reached: bool) -> None:
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        code = ("import socket, sys\ntry:\n    socket.create_connection(('127.0.0.1', %d), timeout=5).close()\n"
                "except OSError as e:\n    sys.exit(f'unreachable: {e}')\nprint('reached')") % port
        run = Run(tmp_path)
        run.backend = DockerBackend(log=run.lines.append, settings=DockerSettings(network=network),
                                    slots=LocalSlots(2, tmp_path / "slots"))
        result = run.backend.run(_request(base_image, code, artifacts))
    assert result.ok is reached, run.text
    assert ("[worker] reached" in run.lines) is reached
