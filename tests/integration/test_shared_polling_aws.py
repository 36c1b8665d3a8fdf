"""Steps waiting in one triggerer share DescribeJobs calls: 150 waiting jobs cost 2 calls a round.

Real BatchStepTriggers in one asyncio loop (as Airflow's triggerer runs them) against moto's
Batch on 127.0.0.1, the jobs held RUNNABLE; the server counts the calls it answers. Then every
job is terminated and each trigger still fires its own event for its own job.
"""
from __future__ import annotations

import asyncio
import threading

import pytest

pytestmark = pytest.mark.slow
JOBS = 150
INTERVAL_S = 0.5


@pytest.fixture
def counted_describes():
    from moto.batch.responses import BatchResponse

    original, calls, lock = BatchResponse.describejobs, [], threading.Lock()

    def counted(response):
        with lock:
            calls.append(len(response._get_param("jobs") or []))
        return original(response)

    BatchResponse.describejobs = counted
    try:
        yield calls
    finally:
        BatchResponse.describejobs = original


def test_150_waiting_steps_share_two_describe_calls_a_round(aws, counted_describes):
    from mlbatch.backends.aws_batch.trigger import BatchStepTrigger

    batch = aws.client("batch")
    definition = batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"][0]["jobDefinitionArn"]
    aws.runner.hold()
    try:
        job_ids = [batch.submit_job(jobName=f"wait-{i}", jobQueue="mlbatch-cpu",
                                    jobDefinition=definition)["jobId"] for i in range(JOBS)]
        triggers = {job_id: BatchStepTrigger(job_id=job_id, aws_conn_id="aws_default", region_name="us-east-1",
                                             poll_interval_s=INTERVAL_S) for job_id in job_ids}

        async def main():
            fired: dict[str, dict] = {}

            async def wait(job_id, trigger):
                async for event in trigger.run():
                    fired[job_id] = event.payload
                    return

            tasks = [asyncio.create_task(wait(job_id, t)) for job_id, t in triggers.items()]
            await asyncio.sleep(INTERVAL_S * 6)  # a few rounds while every job waits
            rounds = list(counted_describes)
            await asyncio.to_thread(lambda: [batch.terminate_job(jobId=j, reason="test") for j in job_ids])
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
            return rounds, fired

        rounds, fired = asyncio.run(main())
    finally:
        aws.runner.release()
    assert len(rounds) >= 4, rounds
    assert set(rounds) == {100, 50}  # every call full (100 ids) but the last of a round: 2 calls a round
    assert sorted(fired) == sorted(job_ids)
    assert {payload["job_id"] for payload in fired.values()} == set(job_ids)  # each its own job
    assert {payload["state"] for payload in fired.values()} == {"done"}
    assert {payload["status"] for payload in fired.values()} == {"FAILED"}
