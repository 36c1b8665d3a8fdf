"""The AWS calls of one no-op step, counted exactly on the stand-in (every job and task run for real).

A step's fixed cost on Batch and ECS is its API calls: the reattach lookup, one submit, the status
looks (one per poll interval, never one right after the submit, none after the last), and one read of
its log; no definition lookup when the submit succeeds, no second describe of a finished job.
"""
from __future__ import annotations

import time

import pytest

from bench.aws_peers import counted_calls
from tests.integration.aws_stand_in import BUCKET

pytestmark = pytest.mark.slow


def _noop(name: str):
    from bench.aws_batch import noop_request

    return noop_request(f"s3://{BUCKET}/calls/{name}").model_copy(update={"identity": f"{name}-{time.time_ns()}"})


def _run(backend_type, aws, name: str):
    from mlbatch.settings import load_settings

    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    lines: list[str] = []
    backend = backend_type(log=lines.append, settings=load_settings(aws.settings_file), sleep=sleep)
    with counted_calls() as calls:
        result = backend.run(_noop(name))
    assert result.ok, result.failure_report() + "\n".join(lines)
    assert any("mlbatch-worker done: check.noop" in line for line in lines)  # its log was read
    return dict(calls), len(sleeps)


def test_a_batch_no_op_step_makes_one_describe_per_poll_and_three_other_calls(aws):
    from mlbatch.backends.aws_batch.backend import AwsBatchBackend

    calls, polls = _run(AwsBatchBackend, aws, "batch-calls")
    assert calls == {"ListJobs": 1, "SubmitJob": 1, "DescribeJobs": polls, "GetLogEvents": 1}


def test_an_ecs_no_op_step_makes_one_describe_per_poll_and_three_other_calls(aws):
    from mlbatch.backends.ecs.backend import EcsBackend

    calls, polls = _run(EcsBackend, aws, "ecs-calls")
    assert calls == {"ListTasks": 1, "RunTask": 1, "DescribeTasks": polls, "GetLogEvents": 1}
