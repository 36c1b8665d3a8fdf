"""The CPU worker image built from Dockerfile.worker, run the way Batch and ECS run it.

Catches what only a real container shows: the argv that an ENTRYPOINT plus a submitted
command make, the code and libraries inside the image, and the kernel's memory limit.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.containers.run import ContainerJob, argv_of, run
from workers.wire import WORKER_ENTRYPOINT, run_command

pytestmark = [pytest.mark.containers]


def step_job(tmp_path: Path, rows: int = 300) -> tuple[dict, Path]:
    """A real step (features.synthetic) whose output lands in `tmp_path`, mounted at the same path."""
    out = tmp_path / "features"
    tmp_path.chmod(0o777)  # the image runs as an unprivileged user
    request = {"worker": "features.synthetic", "params": {"rows": rows, "seed": 3}, "inputs": {},
               "output": str(out), "shard_index": 0, "shard_count": 1}
    return request, out


def job_request(step_request: dict, **fields):
    from mlbatch.backends.jobs import JobRequest

    return JobRequest(name="containers.features", image="mlbatch-worker:cpu", command=run_command(step_request),
                      env={"MLBATCH_TRY_NUMBER": "1"}, vcpu=1, memory_mib=1024, identity="k" * 16, **fields)


def manifest_of(out: Path) -> dict:
    manifests = sorted(out.rglob("*manifest*.json"))
    assert manifests, f"no manifest under {out}: {sorted(p.name for p in out.rglob('*'))}"
    return json.loads(manifests[0].read_text())


def test_image_entrypoint_is_the_wire_contract(docker_client, worker_image):
    config = docker_client.images.get(worker_image).attrs["Config"]
    assert config["Entrypoint"] == list(WORKER_ENTRYPOINT)
    assert config["User"].split(":")[0] not in ("", "0", "root")


def test_workers_list_in_the_image_lists_every_registered_worker(docker_client, worker_image):
    from workers.catalogue import ENTRY_POINTS  # the image's own catalogue: packages installed here are not in it

    ended = run(docker_client, ContainerJob(worker_image, command=["list"], network="none", memory_mib=512))
    assert ended.exit_code == 0, "\n".join(ended.lines)
    listed = {line.split()[0] for line in ended.lines if line.strip()}
    assert listed == set(ENTRY_POINTS)


def test_a_batch_job_definition_and_its_submitted_command_run_a_step_in_the_image(
        docker_client, worker_image, tmp_path):
    from mlbatch.backends.aws_batch.definitions import definition
    from mlbatch.backends.aws_batch.submission import submit_job_args
    from mlbatch.settings import Settings

    step_request, out = step_job(tmp_path)
    request = job_request(step_request)
    container_def = definition(request.image, Settings()).register_args["containerProperties"]
    override = submit_job_args(request, queue="q", job_definition="d", spot_retries=0)["containerOverrides"]
    entrypoint, command = argv_of(container_def, override)
    assert entrypoint is None  # Batch has no entrypoint field: the image's ENTRYPOINT runs, then the command
    memory = next(int(r["value"]) for r in override["resourceRequirements"] if r["type"] == "MEMORY")
    ended = run(docker_client, ContainerJob(
        worker_image, command, entrypoint, {e["name"]: e["value"] for e in override["environment"]},
        memory_mib=memory, network="none", volumes={str(tmp_path): {"bind": str(tmp_path), "mode": "rw"}}))
    assert ended.exit_code == 0, "\n".join(ended.lines)
    assert any(line.startswith("mlbatch-worker done: features.synthetic") for line in ended.lines)
    assert manifest_of(out)["counts"]["rows"] == 300


def test_an_ecs_task_definition_and_its_override_run_a_step_in_the_image(docker_client, worker_image, tmp_path):
    from mlbatch.backends.ecs.definitions import definition
    from mlbatch.backends.ecs.submission import run_task_args
    from mlbatch.settings import Settings

    step_request, out = step_job(tmp_path, rows=200)
    request = job_request(step_request)
    container_def = definition(request.image, Settings()).register_args["containerDefinitions"][0]
    args = run_task_args(request, 0, cluster="c", task_definition="t", capacity_provider="FARGATE",
                         subnets=[], security_groups=[], assign_public_ip=False)
    override = args["overrides"]["containerOverrides"][0]
    entrypoint, command = argv_of(container_def, override)
    ended = run(docker_client, ContainerJob(
        worker_image, command, entrypoint, {e["name"]: e["value"] for e in override["environment"]},
        vcpu=int(args["overrides"]["cpu"]) / 1024, memory_mib=int(args["overrides"]["memory"]), network="none",
        volumes={str(tmp_path): {"bind": str(tmp_path), "mode": "rw"}}))
    assert ended.exit_code == 0, "\n".join(ended.lines)
    assert manifest_of(out)["counts"]["rows"] == 200


def test_a_container_over_its_memory_limit_is_killed_by_the_kernel(docker_client, worker_image):
    grow = "import time\nchunks = []\nwhile True:\n    chunks.append(b'x' * (16 << 20))\n    time.sleep(0.01)\n"
    ended = run(docker_client, ContainerJob(worker_image, ["-c", grow], entrypoint=["python"], memory_mib=128,
                                            network="none"))
    assert (ended.exit_code, ended.oom_killed, ended.killed) == (137, True, False)


def test_a_container_is_removed_after_it_ends(docker_client, worker_image):
    labels = {"mlbatch.test": "removed-after-end"}
    run(docker_client, ContainerJob(worker_image, ["list"], network="none", memory_mib=256, labels=labels))
    assert docker_client.containers.list(all=True, filters={"label": "mlbatch.test=removed-after-end"}) == []
