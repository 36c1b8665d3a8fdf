"""The ECS backend end to end: real Airflow, moto_server on 127.0.0.1, every task run for real.

See aws_stand_in.py for what the stand-in does and does not cover.
"""
from __future__ import annotations

import pytest

from tests.integration.airflow_run import dags_test, write_batch
from tests.integration.aws_stand_in import BUCKET, QUEUES
from tests.integration.conftest import aws_env

pytestmark = pytest.mark.slow


def _tasks(started_by_prefix: str = "mlb-") -> list:
    """What moto recorded: every ECS task started, oldest first."""
    from moto.ecs.models import ecs_backends

    tasks = [task for cluster in ecs_backends["123456789012"]["us-east-1"].tasks.values() for task in cluster.values()]
    return [task for task in tasks if task.started_by.startswith(started_by_prefix)]


def _override_env(task) -> dict[str, str]:
    container = task.overrides["containerOverrides"][0]
    return {item["name"]: item["value"] for item in container["environment"]}


def test_cpu_steps_on_fargate_and_a_gpu_step_on_batch(aws, tmp_path):
    write_batch(tmp_path, "mixed", """
        defaults: {retries: 0, backend: ecs, resources: {vcpu: 1, memory: 2Gi}, timeout: 10m}
        steps:
          features:
            run: features.synthetic
            params: {rows: 2500, seed: 5}
          fan_out:
            run: check.noop
            needs: [features]
            shards: 25
            capacity: spot
            resources: {vcpu: 0.5, memory: 1Gi}
          embed:
            run: check.noop
            needs: [features]
            backend: batch
            queue: gpu
            resources: {gpu: 1}
    """)
    result = dags_test(tmp_path, "mixed", env=aws_env(aws))
    assert result.returncode == 0, result.output[-4000:]

    fan_out = [task for task in _tasks() if _override_env(task).get("MLBATCH_SHARD_COUNT") == "25"]
    assert len(fan_out) == 25  # one RunTask per shard: ECS gives a task no index of its own
    assert sorted(int(_override_env(task)["MLBATCH_SHARD_INDEX"]) for task in fan_out) == list(range(25))
    assert len({task.started_by for task in fan_out}) == 25
    assert {task.capacity_provider_name for task in fan_out} == {"FARGATE_SPOT"}
    assert {(task.overrides["cpu"], task.overrides["memory"]) for task in fan_out} == {("512", "1024")}
    tags = {tag["key"]: tag["value"] for tag in fan_out[0].tags}
    assert tags["mlbatch:dag"] == "mixed" and tags["mlbatch:step"] == "fan_out" and "mlbatch:shard" in tags
    features = [task for task in _tasks() if _override_env(task).get("MLBATCH_SHARD_COUNT") == "1"
                and '"worker": "features.synthetic"' in task.overrides["containerOverrides"][0]["command"][-1]]
    assert len(features) == 1 and features[0].capacity_provider_name == "FARGATE"
    assert (features[0].overrides["cpu"], features[0].overrides["memory"]) == ("1024", "2048")

    from moto.batch.models import batch_backends

    [gpu_job] = [job for job in batch_backends["123456789012"]["us-east-1"]._jobs.values()
                 if job.job_name.startswith("mixed__embed__")]
    assert gpu_job.job_queue.name == QUEUES["gpu"]
    listing = aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="artifacts/mixed/fan_out/")
    assert sum(obj["Key"].endswith("manifest.json") for obj in listing.get("Contents", [])) == 26
    assert "mixed.fan_out: 25 tasks: 25 succeeded" in result.output
    assert "[worker] mlbatch-worker done: features.synthetic" in result.output  # its CloudWatch lines


def test_a_step_past_its_timeout_is_stopped_and_fails_as_timeout(aws, tmp_path):
    write_batch(tmp_path, "ecs_slow", """
        defaults: {retries: 0, backend: ecs}
        steps:
          slow: {run: check.sleep, params: {seconds: 120}, timeout: 3s}
    """)
    result = dags_test(tmp_path, "ecs_slow", env=aws_env(aws))
    assert result.returncode != 0
    assert "class: timeout" in result.output
    [task] = [task for task in _tasks() if "check.sleep" in task.overrides["containerOverrides"][0]["command"][-1]]
    assert task.last_status == "STOPPED" and "past its 3s timeout" in task.stopped_reason


def test_reattach_starts_no_second_task(aws):
    from mlbatch.backends.ecs.backend import EcsBackend
    from mlbatch.backends.jobs import JobRequest

    request = JobRequest(name="reattach.ecs", image="mlbatch-worker:cpu", shard_count=2, identity="r" * 20,
                         command=["list"], tags={"key": "r" * 20})
    lines: list[str] = []
    aws.runner.hold()
    try:
        first = EcsBackend(log=lines.append).submit(request)
        again = EcsBackend(log=lines.append).submit(request)
    finally:
        aws.runner.release()
    assert again.tasks == first.tasks
    assert any("reattached to 2 live ECS task(s)" in line for line in lines)
    assert EcsBackend(log=lines.append).wait(again).ok
    assert len(_tasks("mlb-rrrrrrrrrrrrrrrr-")) == 2
    assert sum("[shard 0/2] train.gbdt" in line for line in lines) == 1
