"""What only a real container shows, on the AWS stand-in: the kernel's memory limit, an output that
cannot be written, and credentials that reach a job without a key in its environment or logs.

Every Batch job and ECS task here runs as a container of the worker image (aws_stand_in.py).
"""
from __future__ import annotations

import uuid

import pytest

from tests.integration.airflow_run import dags_test, write_batch
from tests.integration.airflow_stack import wait_for
from tests.integration.aws_stand_in import BUCKET, CREDENTIALS, EXITED_REASON, OOM_REASON
from tests.integration.conftest import aws_env

pytestmark = pytest.mark.containers


def _request(worker: str, params: dict, output: str, memory_mib: int = 512, **fields):
    from mlbatch.backends.jobs import JobRequest
    from workers.wire import run_command, step_request

    step = step_request(worker=worker, params=params, inputs={}, output=output, shard_count=1)
    return JobRequest(name=f"containers.{worker}", image="mlbatch-worker:cpu", command=run_command(step),
                      env={"MLBATCH_TRY_NUMBER": "1"}, memory_mib=memory_mib, identity=uuid.uuid4().hex, **fields)


def _keys(listing: dict) -> list[str]:
    return [obj["Key"] for obj in listing.get("Contents", [])]


def _batch_job(aws, name: str) -> dict:
    batch = aws.client("batch")
    summaries = [j for status in ("SUCCEEDED", "FAILED")
                 for j in batch.list_jobs(jobQueue="mlbatch-cpu", jobStatus=status)["jobSummaryList"]]
    [summary] = [j for j in summaries if j["jobName"].startswith(name)]
    return batch.describe_jobs(jobs=[summary["jobId"]])["jobs"][0]


def test_a_batch_job_over_its_memory_is_killed_by_the_kernel_and_reported_as_batch_does(aws):
    from mlbatch.backends.aws_batch.backend import AwsBatchBackend
    from mlbatch.backends.failures import FailureClass

    request = _request("check.memory", {"mib": 600, "hold_seconds": 0}, f"s3://{BUCKET}/oom/batch", memory_mib=160)
    result = AwsBatchBackend(log=lambda line: None).run(request)
    [outcome] = result.outcomes
    assert (outcome.failure, outcome.exit_code) == (FailureClass.oom, 137), outcome
    job = _batch_job(aws, "containers__check__memory")
    assert job["status"] == "FAILED" and job["statusReason"] == OOM_REASON
    assert (job["container"]["exitCode"], job["container"]["reason"]) == (137, OOM_REASON)


def test_an_ecs_task_over_its_memory_is_killed_by_the_kernel_and_reported_as_ecs_does(aws):
    from mlbatch.backends.ecs.backend import EcsBackend
    from mlbatch.backends.failures import FailureClass

    # Fargate's smallest size, 512 MiB: the step asks for twice that
    request = _request("check.memory", {"mib": 1100, "hold_seconds": 0}, f"s3://{BUCKET}/oom/ecs", vcpu=0.25)
    result = EcsBackend(log=lambda line: None).run(request)
    [outcome] = result.outcomes
    assert (outcome.failure, outcome.exit_code) == (FailureClass.oom, 137), outcome
    assert OOM_REASON in outcome.reason
    tasks = aws.client("ecs").list_tasks(cluster="mlbatch", desiredStatus="STOPPED")["taskArns"]
    described = aws.client("ecs").describe_tasks(cluster="mlbatch", tasks=tasks)["tasks"]
    [task] = [t for t in described if t["overrides"]["memory"] == "512"]
    assert (task["stopCode"], task["stoppedReason"]) == ("EssentialContainerExited", EXITED_REASON)
    assert (task["containers"][0]["exitCode"], task["containers"][0]["reason"]) == (137, OOM_REASON)


@pytest.mark.slow
def test_a_step_over_its_memory_fails_alone_as_oom_and_its_sibling_succeeds(aws, tmp_path):
    write_batch(tmp_path, "aws_oom", """
        defaults: {retries: 0, backend: batch, resources: {vcpu: 1, memory: 192Mi}, timeout: 10m}
        steps:
          greedy:
            run: check.memory
            params: {mib: 700, hold_seconds: 0}
          modest:
            run: check.memory
            params: {mib: 40, hold_seconds: 0}
    """)
    result = dags_test(tmp_path, "aws_oom", env=aws_env(aws))
    assert result.returncode != 0
    assert "class: oom" in result.output and OOM_REASON in result.output
    s3 = aws.client("s3")
    assert any(key.endswith("manifest.json") for key in _keys(s3.list_objects_v2(
        Bucket=BUCKET, Prefix="artifacts/aws_oom/modest/")))  # the sibling finished and committed
    assert not any(key.endswith("manifest.json") for key in _keys(s3.list_objects_v2(
        Bucket=BUCKET, Prefix="artifacts/aws_oom/greedy/")))


def test_a_container_that_cannot_write_its_output_is_not_done(aws):
    from mlbatch.backends.aws_batch.backend import AwsBatchBackend
    from mlbatch.backends.failures import FailureClass

    lines: list[str] = []
    request = _request("check.noop", {}, "s3://mlbatch-no-such-bucket/artifacts/noop")
    result = AwsBatchBackend(log=lines.append).run(request)
    assert not result.ok and result.outcomes[0].failure is FailureClass.code_error
    assert result.outcomes[0].exit_code == 1
    assert any("NoSuchBucket" in line or "does not exist" in line for line in lines), lines[-20:]
    job = _batch_job(aws, "containers__check__noop")
    assert job["status"] == "FAILED" and job["statusReason"] == EXITED_REASON


def test_a_container_gets_its_role_credentials_without_a_key_in_its_environment_or_logs(aws):
    from mlbatch.backends.aws_batch.backend import AwsBatchBackend

    fetched = aws.role.fetches
    started = len(aws.runner.environments)
    request = _request("features.synthetic", {"rows": 100, "seed": 1}, f"s3://{BUCKET}/credentials/features")
    assert AwsBatchBackend(log=lambda line: None).run(request).ok
    assert _keys(aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="credentials/features/"))
    assert aws.role.fetches > fetched  # the SDK in the container fetched the role's credentials itself

    secrets = {*aws.role.secrets, *CREDENTIALS.values()}
    environment = aws.runner.environments[started]
    assert any(item.startswith("AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:") for item in environment)
    for item in [item for env in aws.runner.environments for item in env]:
        assert not any(secret in item for secret in secrets), item
    job = _batch_job(aws, "containers__features__synthetic")
    submitted = " ".join(f"{e['name']}={e['value']}" for e in job["container"].get("environment", []))
    assert not any(secret in submitted for secret in secrets)
    logs = aws.client("logs")
    groups = [group["logGroupName"] for group in logs.describe_log_groups()["logGroups"]]
    assert "/aws/batch/job" in groups
    for group in groups:
        for stream in logs.describe_log_streams(logGroupName=group).get("logStreams", []):
            events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])["events"]
            text = "\n".join(event["message"] for event in events)
            assert not any(secret in text for secret in secrets), stream["logStreamName"]


def test_terminating_a_running_batch_job_kills_and_removes_its_container(aws, docker_client):
    from mlbatch.backends.aws_batch.backend import AwsBatchBackend

    handle = AwsBatchBackend(log=lambda line: None).submit(
        _request("check.sleep", {"seconds": 600}, f"s3://{BUCKET}/terminate/sleep"))
    label = {"label": f"mlbatch.batch-job={handle.job_id}"}
    assert wait_for(lambda: any(c.status == "running" for c in docker_client.containers.list(filters=label)),
                    within_s=120, every_s=0.2)
    aws.client("batch").terminate_job(jobId=handle.job_id, reason="test: terminated")
    batch = aws.client("batch")
    assert wait_for(lambda: batch.describe_jobs(jobs=[handle.job_id])["jobs"][0]["status"] == "FAILED",
                    within_s=60, every_s=0.2)
    job = batch.describe_jobs(jobs=[handle.job_id])["jobs"][0]
    assert job["container"]["exitCode"] == 137 and job["statusReason"] == "test: terminated"
    assert docker_client.containers.list(all=True, filters=label) == []
