"""BatchJobs: everything mlbatch asks AWS Batch and CloudWatch Logs, through the Amazon provider.

The provider's BatchClientHook gives the connection (credentials, region, endpoint from
the Airflow connection), throttle-tolerant job descriptions and the log-stream lookup of
every attempt; AwsLogsHook reads the lines. What it lacks is written here: finding a live
job by name to reattach to (the provider's BatchOperator submits anew on every retry),
the children of an array job (it reads child 0 only), and backoff on SubmitJob.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator

from mlbatch.backends.aws_batch.outcome import LIVE_STATUSES
from mlbatch.backends.aws.conventions import TAG_PREFIX
from mlbatch.backends.aws.logs import last_lines
from mlbatch.backends.aws.throttle import call_with_backoff

DESCRIBE_CHUNK = 100  # DescribeJobs takes at most 100 ids
FINISHED = ("SUCCEEDED", "FAILED")  # a job in these never changes again
DEFAULT_LOG_GROUP = "/aws/batch/job"


class BatchJobs:
    def __init__(self, conn_id: str | None, region: str | None, *, sleep: Callable[[float], None] = time.sleep,
                 hook: Any = None, logs_hook: Any = None) -> None:
        self._conn_id, self._region, self._sleep = conn_id, region, sleep
        self._hook, self._logs_hook = hook, logs_hook
        self._finished: dict[str, dict[str, Any]] = {}  # job id -> its final description

    @property
    def hook(self) -> Any:
        if self._hook is None:
            from airflow.providers.amazon.aws.hooks.batch_client import BatchClientHook

            self._hook = BatchClientHook(aws_conn_id=self._conn_id, region_name=self._region)
        return self._hook

    @property
    def client(self) -> Any:
        return self.hook.get_conn()

    # -- submitting -------------------------------------------------------------
    def submit(self, args: dict[str, Any]) -> str:
        """SubmitJob, backing off when throttled (the account limit is 50 calls/s)."""
        return call_with_backoff(lambda: self.client.submit_job(**args)["jobId"], sleep=self._sleep)

    def find_live(self, queue: str, name: str, identity: str) -> dict[str, Any] | None:
        """The newest live job of this name in the queue computing the same cache key, if any."""
        ids = [job["jobId"] for job in self._list(jobQueue=queue, filters=[{"name": "JOB_NAME", "values": [name]}])
               if ":" not in job["jobId"] and job.get("status") in LIVE_STATUSES]  # ':' marks an array child
        live = [job for job in self.describe_many(ids)
                if job.get("status") in LIVE_STATUSES and (job.get("tags") or {}).get(f"{TAG_PREFIX}key") == identity]
        return max(live, key=lambda job: job.get("createdAt", 0), default=None)

    # -- watching ---------------------------------------------------------------
    def describe(self, job_id: str) -> dict[str, Any]:
        """The job's description; a finished one is kept, so collecting it and reading its logs ask no more."""
        if job_id in self._finished:
            return self._finished[job_id]
        job = self.hook.get_job_description(job_id)  # retries throttled describes with backoff
        if job.get("status") in FINISHED:
            self._finished[job_id] = job
        return job

    def describe_many(self, job_ids: list[str]) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = []
        for start in range(0, len(job_ids), DESCRIBE_CHUNK):
            jobs += self.client.describe_jobs(jobs=job_ids[start:start + DESCRIBE_CHUNK]).get("jobs", [])
        return jobs

    def finished_children(self, array_job_id: str) -> list[dict[str, Any]]:
        """Summaries of the array's finished children (id '<parent>:<index>', status, reasons, times)."""
        children: list[dict[str, Any]] = []
        for status in ("SUCCEEDED", "FAILED"):
            children += [job for job in self._list(arrayJobId=array_job_id, jobStatus=status)
                         if job.get("status", status) == status]
        return children

    def log_lines(self, job_id: str) -> list[str]:
        """The CloudWatch lines of the job's latest attempt; [] when it wrote none (or logs are off)."""
        try:
            where = log_stream(self.describe(job_id), self._region)
        except Exception:  # noqa: BLE001 - a job Batch no longer knows has no lines to show
            return []
        if where is None:
            return []
        group, stream, region = where
        try:
            return last_lines(self._logs(region).conn, group, stream)
        except Exception:  # noqa: BLE001 - the stream may not exist yet or has expired
            return []

    def queue_environments(self, queue: str) -> list[dict[str, Any]]:
        queues = self.client.describe_job_queues(jobQueues=[queue]).get("jobQueues", [])
        names = [entry["computeEnvironment"] for q in queues for entry in q.get("computeEnvironmentOrder", [])]
        if not names:
            return []
        return self.client.describe_compute_environments(computeEnvironments=names).get("computeEnvironments", [])

    # -- stopping ---------------------------------------------------------------
    def terminate(self, job_id: str, reason: str) -> None:
        """Terminate a job; for an array parent Batch terminates every child with it."""
        self.client.terminate_job(jobId=job_id, reason=reason)

    # -- job definitions ----------------------------------------------------------
    def active_definition(self, name: str) -> dict[str, Any] | None:
        found = self.client.describe_job_definitions(jobDefinitionName=name, status="ACTIVE").get("jobDefinitions", [])
        return max(found, key=lambda d: d.get("revision", 0), default=None)

    def register_definition(self, definition: dict[str, Any]) -> str:
        return self.client.register_job_definition(**definition)["jobDefinitionArn"]

    # -- plumbing -----------------------------------------------------------------
    def _list(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        for page in self.client.get_paginator("list_jobs").paginate(**kwargs):
            yield from page.get("jobSummaryList", [])

    def _logs(self, region: str | None) -> Any:
        if self._logs_hook is None:
            from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

            self._logs_hook = AwsLogsHook(aws_conn_id=self._conn_id, region_name=region or self._region)
        return self._logs_hook


def log_stream(job: dict[str, Any], region: str | None) -> tuple[str, str, str | None] | None:
    """(group, stream, region) of a container job's latest attempt from its description, as the provider's
    BatchClientHook reads them; None without a stream yet or with another log driver than awslogs."""
    container = job.get("container") or {}
    config = container.get("logConfiguration") or {}
    if config.get("logDriver", "awslogs") != "awslogs" or not container.get("logStreamName"):
        return None
    options = config.get("options") or {}
    return options.get("awslogs-group", DEFAULT_LOG_GROUP), container["logStreamName"], options.get("awslogs-region", region)
