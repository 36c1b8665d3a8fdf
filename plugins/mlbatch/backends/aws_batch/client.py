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
from mlbatch.backends.aws.throttle import call_with_backoff

DESCRIBE_CHUNK = 100  # DescribeJobs takes at most 100 ids


class BatchJobs:
    def __init__(self, conn_id: str | None, region: str | None, *, sleep: Callable[[float], None] = time.sleep,
                 hook: Any = None, logs_hook: Any = None) -> None:
        self._conn_id, self._region, self._sleep = conn_id, region, sleep
        self._hook, self._logs_hook = hook, logs_hook

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
        return self.hook.get_job_description(job_id)  # retries throttled describes with backoff

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
            streams = self.hook.get_job_all_awslogs_info(job_id)
        except Exception:  # noqa: BLE001 - no log stream is a normal state for a job that never started
            return []
        if not streams:
            return []
        latest = streams[-1]
        try:
            events = self._logs(latest["awslogs_region"]).get_log_events(
                log_group=latest["awslogs_group"], log_stream_name=latest["awslogs_stream_name"], start_from_head=True)
            return [event["message"] for event in events]
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
