"""AwsBatchBackend: one step try as one AWS Batch job (an array job for several shards).

submit() reattaches to a live job computing the same cache key (an Airflow retry after
the task process died, a restarted worker, another run of the same inputs) and submits
only when there is none; wait() polls in the task; trigger() hands the wait to the
triggerer instead; collect() turns the finished job into a JobResult, with the log
lines of the job (or of each failed child) in the task log.
"""
from __future__ import annotations

import hashlib
import time
from typing import Any, Callable

from workers import wire

from mlbatch.backends.aws.conventions import CANCEL_REASON, summary_line
from mlbatch.backends.aws.logs import FinishedShard
from mlbatch.backends.aws.polling import PollingBackend, RemoteHandle
from mlbatch.backends.aws_batch import outcome as batch_outcome
from mlbatch.backends.aws_batch.client import BatchJobs
from mlbatch.backends.aws_batch.definitions import definition_name
from mlbatch.backends.aws_batch.submission import MAX_INLINE_SHARD_MAP, job_name, shard_map, submit_job_args
from mlbatch.backends.failures import FailureClass
from mlbatch.backends.jobs import JobRequest, JobResult, ShardOutcome
from mlbatch.backends.protocols import LogLine, Progress
from mlbatch.settings import BatchSettings, Settings


class BatchHandle(RemoteHandle):
    job_id: str
    job_name: str
    queue: str
    indices: list[int]  # array child i runs shard indices[i]
    reattached: bool = False

    def placement(self) -> dict[str, str]:
        return {"job_id": self.job_id, "queue": self.queue}

    @property
    def is_array(self) -> bool:
        return len(self.indices) > 1

    @property
    def shards(self) -> list[int]:
        return list(self.indices)


class AwsBatchBackend(PollingBackend[BatchHandle]):
    handle_type = BatchHandle
    service = "AWS Batch"
    definition_noun = "job definition"

    def __init__(self, log: LogLine = print, settings: Settings | None = None, jobs: BatchJobs | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time) -> None:
        super().__init__(log, settings, sleep, clock)
        self.jobs = jobs or BatchJobs(self.settings.aws.conn_id, self.settings.aws.region)

    @property
    def section(self) -> BatchSettings:
        return self.settings.batch

    def submit(self, request: JobRequest) -> BatchHandle:
        role = request.queue or ("gpu" if request.gpu else "cpu")
        queue = self.settings.queue(role)
        definition = definition_name(request.image, self.settings)
        name = job_name(request)
        live = self.jobs.find_live(queue, name, request.identity) if request.identity else None
        common = dict(job_name=name, queue=queue, name=request.name, shard_count=request.shard_count,
                      memory_mib=request.memory_mib, vcpu=request.vcpu, gpu=request.gpu,
                      spot=role.endswith("-spot"), timeout_s=request.timeout_s,
                      start_timeout_s=request.start_timeout_s)
        if live is not None:
            handle = BatchHandle(job_id=live["jobId"], indices=_indices_of(live, request), reattached=True,
                                 submitted_at=live.get("createdAt", self._clock() * 1000) / 1000, **common)
            tags = live.get("tags") or {}
            self._log(f"{request.name}: reattaching to live job {handle.job_id} ({live.get('status')}, "
                      f"run {tags.get('mlbatch:run', '?')} try {tags.get('mlbatch:try', '?')}) "
                      "instead of submitting a second one")
        else:
            args = submit_job_args(request, queue=queue, job_definition=definition,
                                   spot_retries=self.settings.batch.spot_retries, map_uri=self._shard_map_file(request))
            job_id = self.submit_checked(lambda: self.jobs.submit(args), definition, request.image,
                                         self.jobs.active_definition)
            handle = BatchHandle(job_id=job_id, indices=request.indices, submitted_at=self._clock(), **common)
            shape = f"array job of {len(handle.indices)} children" if handle.is_array else "job"
            self.log_submission(request, f"submitted AWS Batch {shape} {job_id} ({name}) to queue {queue}")
        self._handle = handle
        return handle

    def _shard_map_file(self, request: JobRequest) -> str | None:
        """A shard list too long for SubmitJob goes to a file beside the artifacts (workers read it)."""
        text = shard_map(request)
        if text is None or len(text) <= MAX_INLINE_SHARD_MAP:
            return None
        from workers.artifacts import join, write_bytes

        root = request.env.get(wire.ARTIFACTS, "")
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return write_bytes(join(root, "_shard_maps", f"{job_name(request)}-{digest}.txt"), text.encode())

    def look(self, handle: BatchHandle) -> tuple[Progress, str]:
        job = self.jobs.describe(handle.job_id)
        progress = batch_outcome.progress(job, now=self._clock(), start_deadline=handle.start_deadline)
        return progress, f"job {handle.job_id} {_status_text(job)}"

    def trigger(self, handle: BatchHandle, resume: dict[str, Any] | None = None) -> Any:
        from mlbatch.backends.aws_batch.trigger import BatchStepTrigger

        return BatchStepTrigger(job_id=handle.job_id, aws_conn_id=self.settings.aws.conn_id,
                                region_name=self.settings.aws.region, poll_interval_s=self.poll_interval_s,
                                start_deadline=handle.start_deadline, resume=resume)

    def stop(self, handle: BatchHandle, reason: str) -> None:
        """Terminate the job (Batch terminates every array child with it)."""
        self.jobs.terminate(handle.job_id, reason[:1024])
        self._log(f"{handle.name}: terminated job {handle.job_id}")

    # -- turning a finished job into a JobResult -----------------------------------
    def starved(self, handle: BatchHandle) -> JobResult:
        environments = self.jobs.queue_environments(handle.queue)
        reason = batch_outcome.starvation_reason(handle.start_timeout_s, handle.queue, environments)
        self.jobs.terminate(handle.job_id, f"{CANCEL_REASON}: {reason}"[:1024])
        self._log(f"{handle.name}: {reason}")
        return self.result(handle, [ShardOutcome(index=i, failure=FailureClass.infrastructure, reason=reason)
                                    for i in handle.indices])

    def collect(self, handle: BatchHandle) -> JobResult:
        if handle.is_array:
            children = {_child_index(job): job for job in self.jobs.finished_children(handle.job_id)}
            statuses = {handle.indices[i]: children.get(i, {}).get("status", "UNFINISHED")
                        for i in range(len(handle.indices))}
            self._log(summary_line(handle.name, statuses))
            pairs = [(handle.indices[i], f"{handle.job_id}:{i}", children.get(i)) for i in range(len(handle.indices))]
        else:
            pairs = [(handle.indices[0], handle.job_id, self.jobs.describe(handle.job_id))]
        shards = [FinishedShard(shard, job_id, job, job is None or job.get("status") != "SUCCEEDED")
                  for shard, job_id, job in pairs]
        return self.report(handle, shards, self.jobs.log_lines, ("job", "children"))

    def classify(self, handle: BatchHandle, described: dict[str, Any], log_tail: list[str]
                 ) -> tuple[FailureClass | None, str, int | None, float]:
        failure, reason, exit_code = batch_outcome.classify_job(described, memory_mib=handle.memory_mib,
                                                                timeout_s=handle.timeout_s, log_tail=log_tail)
        return failure, reason, exit_code, batch_outcome.job_duration_s(described)

    def gone_reason(self, handle: BatchHandle, shard: int) -> str:
        return "the array ended without this child finishing"


def _child_index(job: dict[str, Any]) -> int:
    return int(job["jobId"].rsplit(":", 1)[1])


def _status_text(job: dict[str, Any]) -> str:
    summary = (job.get("arrayProperties") or {}).get("statusSummary") or {}
    counts = ", ".join(f"{n} {status.lower()}" for status, n in sorted(summary.items()) if n)
    return job.get("status", "?") + (f" (children: {counts})" if counts else "")


def _indices_of(job: dict[str, Any], request: JobRequest) -> list[int]:
    """Which shards a live job runs, read back from the environment it was submitted with."""
    from workers.request import shard_map_of

    env = {item["name"]: item["value"] for item in (job.get("container") or {}).get("environment", [])}
    if env.get(wire.SHARD_INDEX):
        return [int(env[wire.SHARD_INDEX])]
    if (shards := shard_map_of(env)) is not None:
        return shards
    size = (job.get("arrayProperties") or {}).get("size")
    return list(range(size)) if size else request.indices
