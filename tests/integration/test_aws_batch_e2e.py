"""The AWS Batch backend end to end: real Airflow, a real local AWS endpoint (moto_server), jobs run for real.

See aws_stand_in.py for what the stand-in does and does not cover.
"""
from __future__ import annotations

import pytest

from tests.integration.airflow_run import dags_test, write_batch
from tests.integration.aws_stand_in import BUCKET, CREDENTIALS, PROJECT, QUEUES
from tests.integration.conftest import aws_env

SPECS = PROJECT / "dags" / "specs"

pytestmark = pytest.mark.slow


def _jobs(name_prefix: str) -> list:
    """What moto recorded: every parent job submitted for this batch, oldest first."""
    from moto.batch.models import batch_backends

    backend = batch_backends["123456789012"]["us-east-1"]
    jobs = [job for job in backend._jobs.values() if ":" not in job.job_id and job.job_name.startswith(name_prefix)]
    return sorted(jobs, key=lambda job: job.job_created_at)


def _env_of(job) -> dict[str, str]:
    return {item["name"]: item["value"] for item in job.container_overrides.get("environment", [])}


def test_deploy_registers_a_changed_definition_once(aws, capsys):
    from mlbatch.cli.deploy import deploy

    assert deploy(SPECS, "v2", dry_run=True) == 0  # a new image tag changes the definition
    assert "would register  batch mlbatch-cpu" in capsys.readouterr().out
    assert deploy(SPECS, "v2", dry_run=False) == 0
    assert "registered      batch mlbatch-cpu" in capsys.readouterr().out
    assert deploy(SPECS, "v2", dry_run=False) == 0
    again = capsys.readouterr().out
    assert "unchanged       batch mlbatch-cpu" in again and "0 definition(s) registered" in again
    definitions = aws.client("batch").describe_job_definitions(jobDefinitionName="mlbatch-cpu")["jobDefinitions"]
    assert len(definitions) == 2  # the fixture's, and v2's: registered once
    latest = max(definitions, key=lambda d: d["revision"])["containerProperties"]
    assert latest["image"].endswith("/mlbatch-worker:v2-cpu") and latest["jobRoleArn"] == aws.job_role


def test_a_batch_runs_as_batch_jobs_with_real_outputs(aws, tmp_path):
    from mlbatch.cli.deploy import deploy

    write_batch(tmp_path, "aws_churn", """
        defaults: {retries: 0, resources: {vcpu: 1, memory: 1Gi}, timeout: 10m}
        steps:
          features:
            run: features.synthetic
            params: {rows: 3000, seed: 3}
          train:
            run: train.gbdt
            needs: [features]
            shards: 3
            params: {max_iter: 10}
            resources: {vcpu: 2, memory: 1536Mi}
          ensemble:
            run: ensemble.average
            needs: [train]
          score:
            run: predict.batch
            needs: [ensemble, features]
            shards: {per: 1000, of: features.rows, max: 10}
          gpu_check:
            run: check.noop
            needs: [features]
            queue: gpu-spot
            resources: {gpu: 1}
    """)
    assert deploy(tmp_path / "specs", None, dry_run=False) == 0
    result = dags_test(tmp_path, "aws_churn", env=aws_env(aws, MLBATCH_BACKEND="batch"))
    assert result.returncode == 0, result.output[-4000:]

    jobs = {job.job_name.split("__")[1]: job for job in _jobs("aws_churn__")}
    assert set(jobs) == {"features", "train", "ensemble", "score", "gpu_check"}
    assert jobs["train"].array_properties == {"size": 3}
    assert jobs["score"].array_properties == {"size": 3}  # sized at run time: ceil(3000 / 1000)
    assert "size" not in jobs["features"].array_properties
    assert jobs["train"].container_overrides["resourceRequirements"] == [
        {"type": "VCPU", "value": "2"}, {"type": "MEMORY", "value": "1536"}]
    assert jobs["gpu_check"].job_queue.name == QUEUES["gpu-spot"]
    assert {"type": "GPU", "value": "1"} in jobs["gpu_check"].container_overrides["resourceRequirements"]
    assert jobs["features"].job_queue.name == QUEUES["cpu"]
    assert jobs["train"].timeout == {"attemptDurationSeconds": 600}
    tags = aws.client("batch").list_tags_for_resource(resourceArn=jobs["train"].arn)["tags"]
    assert tags["mlbatch:dag"] == "aws_churn" and tags["mlbatch:step"] == "train" and tags["mlbatch:try"] == "1"
    assert jobs["train"].job_name.endswith(tags["mlbatch:key"][:16])  # named by step and cache key

    # the outputs are real: written by the workers to the same S3, logs read back from CloudWatch
    listing = aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="artifacts/aws_churn/score/")
    assert sum(obj["Key"].endswith("manifest.json") for obj in listing.get("Contents", [])) == 4  # 3 shards + step
    assert "[shard 2/3] mlbatch-worker done" in result.output
    assert "3 children: 3 succeeded" in result.output
    assert not set(CREDENTIALS.values()) & set(_env_of(jobs["train"]).values())  # no key travels in a job's environment

    again = dags_test(tmp_path, "aws_churn", env=aws_env(aws, MLBATCH_BACKEND="batch"))
    assert again.returncode == 0 and again.output.count("cache hit") >= 5
    assert len(_jobs("aws_churn__")) == 5  # all cache hits: nothing submitted


def test_a_retry_resubmits_only_the_failed_shard_and_bad_input_fails_fast(aws, tmp_path):
    write_batch(tmp_path, "aws_retry", """
        defaults: {retries: 1, retry_delay: 1s}
        steps:
          flaky:
            run: check.fail
            shards: 3
            params: {fail_tries: 1, fail_shards: [1], message: spot-like hiccup}
          broken:
            run: check.fail
            needs: [flaky]
            params: {bad_input: true, message: column churned is missing}
    """)
    result = dags_test(tmp_path, "aws_retry",
                       env=aws_env(aws, MLBATCH_BACKEND="batch", MLBATCH_BATCH_DEFERRABLE="false"))
    assert result.returncode != 0
    first, second = _jobs("aws_retry__flaky")
    assert first.array_properties == {"size": 3}
    assert "size" not in second.array_properties and _env_of(second)["MLBATCH_SHARD_INDEX"] == "1"
    assert "3 children: 1 failed, 2 succeeded (shards 1)" in result.output
    assert "RuntimeError: spot-like hiccup (shard 1, try 1)" in result.output  # the failed child's own log
    [broken] = _jobs("aws_retry__broken")  # bad input: no second job
    assert "class: bad_input" in result.output and "column churned is missing" in result.output


def test_reattach_finds_the_live_job_instead_of_submitting_again(aws):
    from mlbatch.backends.aws_batch.backend import AwsBatchBackend
    from mlbatch.backends.jobs import JobRequest

    request = JobRequest(name="reattach.step", image="mlbatch-worker:cpu",
                         command=["list"], identity="k" * 20,
                         tags={"key": "k" * 20, "try": "1"}, start_timeout_s=120)
    lines: list[str] = []
    aws.runner.hold()  # the job waits in RUNNABLE, as with a busy queue
    try:
        first = AwsBatchBackend(log=lines.append).submit(request)
        again = AwsBatchBackend(log=lines.append).submit(request.model_copy(update={"tags": {"try": "2"}}))
    finally:
        aws.runner.release()
    assert again.reattached and again.job_id == first.job_id
    assert any("reattaching to live job" in line for line in lines)
    result = AwsBatchBackend(log=lines.append).wait(again)
    assert result.ok
    assert len(_jobs("reattach__step__")) == 1
    assert any("[worker] train.gbdt" in line for line in lines)
