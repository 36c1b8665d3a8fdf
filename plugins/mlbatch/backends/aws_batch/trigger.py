"""BatchStepTrigger: waits for one Batch job in the triggerer, so a waiting step holds no worker slot.

Our own rather than the provider's BatchJobTrigger: that one wraps the
`batch_job_complete` waiter, which knows only "succeeded" and "failed" (a failure is
raised inside the triggerer, before mlbatch can classify it and alert once) and has no
notion of a job starving in RUNNABLE past its start_timeout. This one only watches and
reports; the task resumes to classify, collect logs and commit. It holds ids and
numbers only, so it serializes trivially.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

from airflow.triggers.base import BaseTrigger, TriggerEvent

from mlbatch.backends.aws_batch.outcome import progress

_THROTTLED = ("TooManyRequestsException", "ThrottlingException")


class BatchStepTrigger(BaseTrigger):
    def __init__(self, job_id: str, aws_conn_id: str | None, region_name: str | None = None,
                 poll_interval_s: float = 15.0, start_deadline: float | None = None,
                 resume: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.job_id = job_id
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.poll_interval_s = poll_interval_s
        self.start_deadline = start_deadline
        self.resume = resume or {}  # the step's own state, handed back in the event (plain JSON)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "job_id": self.job_id, "aws_conn_id": self.aws_conn_id, "region_name": self.region_name,
            "poll_interval_s": self.poll_interval_s, "start_deadline": self.start_deadline, "resume": self.resume,
        })

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook
        from botocore.exceptions import ClientError

        hook = BatchClientHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        throttled = 0
        async with await hook.get_async_conn() as client:
            # First look after one interval: a step defers right after it submits, and an event that
            # fires within a second or two of the deferral can lose a race in Airflow's scheduler that
            # fails the task (apache/airflow#66374, #72716, open in 3.3.2).
            await asyncio.sleep(self.poll_interval_s)
            while True:
                try:
                    jobs = (await client.describe_jobs(jobs=[self.job_id])).get("jobs", [])
                    throttled = 0
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in _THROTTLED:
                        raise
                    throttled += 1
                    await asyncio.sleep(hook.exponential_delay(throttled))
                    continue
                if not jobs:
                    yield TriggerEvent({"job_id": self.job_id, "state": "missing", "resume": self.resume})
                    return
                state = progress(jobs[0], now=time.time(), start_deadline=self.start_deadline)
                if state != "waiting":
                    yield TriggerEvent({"job_id": self.job_id, "state": state, "status": jobs[0].get("status"),
                                        "resume": self.resume})
                    return
                await asyncio.sleep(self.poll_interval_s)

    async def on_kill(self) -> None:
        """Mark failed / clear on a deferred step: terminate the job (and every array child) too."""
        from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook

        from mlbatch.backends.aws_batch.outcome import CANCEL_REASON

        hook = BatchClientHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        async with await hook.get_async_conn() as client:
            await client.terminate_job(jobId=self.job_id, reason=f"{CANCEL_REASON} (the Airflow task was stopped)")
