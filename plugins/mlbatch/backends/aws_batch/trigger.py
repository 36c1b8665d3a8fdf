"""BatchStepTrigger: waits for one Batch job in the triggerer (the loop is aws.trigger.PollingTrigger's).

It reports `done`, `not_started` (still RUNNABLE past the start deadline) or `missing`
(Batch no longer knows the job); the task resumes to classify and collect.
"""
from __future__ import annotations

import time
from typing import Any

from mlbatch.backends.aws.conventions import STOPPED_BY_AIRFLOW
from mlbatch.backends.aws.trigger import PollingTrigger
from mlbatch.backends.aws_batch.outcome import progress
from mlbatch.backends.protocols import Progress


class BatchStepTrigger(PollingTrigger):
    def __init__(self, job_id: str, aws_conn_id: str | None, region_name: str | None = None,
                 poll_interval_s: float = 15.0, start_deadline: float | None = None,
                 resume: dict[str, Any] | None = None) -> None:
        super().__init__(aws_conn_id, region_name, poll_interval_s, resume)
        self.job_id = job_id
        self.start_deadline = start_deadline

    def own_kwargs(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "start_deadline": self.start_deadline}

    def hook(self) -> Any:
        from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook

        return BatchClientHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    def watched(self) -> list[str]:
        return [self.job_id]

    async def describe(self, client: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
        return {job["jobId"]: job for job in (await client.describe_jobs(jobs=ids)).get("jobs", [])}

    def judge(self, described: dict[str, dict[str, Any] | None]) -> tuple[Progress, dict[str, Any]]:
        job = described.get(self.job_id)
        state = progress(job, now=time.time(), start_deadline=self.start_deadline)
        return state, {"job_id": self.job_id, **({"status": job.get("status")} if job else {})}

    async def stop(self, client: Any) -> None:
        """Terminate the job (and with it every array child)."""
        await client.terminate_job(jobId=self.job_id, reason=STOPPED_BY_AIRFLOW)
