"""The AWS Batch part of the sweeper: live jobs of the deployment's queues, with their mlbatch tags.

ListJobs per queue and live status (array children are left to their parent: terminating the
parent terminates them), DescribeJobs for the tags; TerminateJob with mlbatch's cancel reason, so
a job stopped here reads as cancelled wherever it is classified.
"""
from __future__ import annotations

from typing import Any, Iterable

from mlbatch.backends.aws.conventions import CANCEL_REASON, TAG_PREFIX
from mlbatch.backends.aws_batch.client import BatchJobs
from mlbatch.backends.aws_batch.outcome import LIVE_STATUSES
from mlbatch.sweep.resources import StepResource, step_tags


def resource_of(job: dict[str, Any], queue: str) -> StepResource | None:
    tags = step_tags(job.get("tags") or {}, TAG_PREFIX)
    if tags is None:
        return None
    dag, step, run = tags
    return StepResource(kind="Batch job", id=job["jobId"], dag=dag, step=step, run=run,
                        created=(job.get("createdAt") or 0) / 1000, status=str(job.get("status", "")), where=queue)


class BatchSweepSource:
    name = "AWS Batch"

    def __init__(self, jobs: BatchJobs, queues: Iterable[str]) -> None:
        self.jobs, self.queues = jobs, sorted(set(queues))

    def list(self) -> list[StepResource]:
        found: list[StepResource] = []
        for queue in self.queues:
            ids = [summary["jobId"] for status in LIVE_STATUSES for summary in self._summaries(queue, status)
                   if ":" not in summary["jobId"]]  # ':' marks an array child
            found += [r for job in self.jobs.describe_many(ids)
                      if job.get("status") in LIVE_STATUSES and (r := resource_of(job, queue)) is not None]
        return found

    def stop(self, resource: StepResource, reason: str) -> None:
        self.jobs.terminate(resource.id, f"{CANCEL_REASON} ({reason})")

    def _summaries(self, queue: str, status: str) -> Iterable[dict[str, Any]]:
        for page in self.jobs.client.get_paginator("list_jobs").paginate(jobQueue=queue, jobStatus=status):
            yield from page.get("jobSummaryList", [])
