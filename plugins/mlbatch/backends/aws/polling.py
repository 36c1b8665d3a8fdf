"""PollingBackend: the half of a remote backend that AWS Batch and ECS share.

A subclass says how to submit, how to look at its jobs once, how to stop them and how
to classify one finished shard; this base owns the rest: `run` = submit + wait, the
wait loop (a log line each time the status changes), what each `Progress` turns into
(`finish`), cancel, the submission log line, the "definition not registered" error,
and the outcome of a finished shard with its log tail.
"""
from __future__ import annotations

import time
from typing import Any, Callable, ClassVar, Generic, Sequence, TypeVar

from pydantic import BaseModel, ConfigDict

from mlbatch.backends.aws.conventions import STOPPED_BY_AIRFLOW
from mlbatch.backends.aws.logs import LOG_TAIL_LINES, FinishedShard, report_shards
from mlbatch.backends.failures import FailureClass, format_duration, format_mib
from mlbatch.backends.jobs import JobRequest, JobResult, ShardOutcome
from mlbatch.backends.protocols import LogLine, Progress
from mlbatch.settings import BatchSettings, EcsSettings, Settings, SettingsError, load_settings


class RemoteHandle(BaseModel):
    """A submitted (or reattached) try: what waiting for it and collecting it needs, as plain JSON."""

    model_config = ConfigDict(frozen=True)

    name: str  # dag_id.step
    shard_count: int
    memory_mib: int
    vcpu: float
    gpu: int
    spot: bool
    timeout_s: float | None = None
    start_timeout_s: float | None = None
    submitted_at: float  # epoch seconds

    def placement(self) -> dict[str, str]:
        """Where the try ran, as far as the service says (for the run summary)."""
        return {}

    @property
    def start_deadline(self) -> float | None:
        """When a try none of whose shards has started counts as starved (no capacity)."""
        return self.submitted_at + self.start_timeout_s if self.start_timeout_s else None

    @property
    def shards(self) -> list[int]:
        """The shards this try runs."""
        raise NotImplementedError


H = TypeVar("H", bound=RemoteHandle)


class PollingBackend(Generic[H]):
    """Submits to an AWS service, then waits here (`wait`) or in the triggerer, and collects."""

    handle_type: ClassVar[type[RemoteHandle]]
    service: ClassVar[str]  # "AWS Batch", "ECS": how log lines and errors name the service
    definition_noun: ClassVar[str]  # "job definition", "task definition"

    def __init__(self, log: LogLine = print, settings: Settings | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time) -> None:
        self._log = log
        self.settings = settings or load_settings()
        self._sleep, self._clock = sleep, clock
        self._handle: H | None = None
        self._cancelled = False

    # -- what a subclass says --------------------------------------------------------
    @property
    def section(self) -> BatchSettings | EcsSettings:
        """The settings section of this service (poll interval, deferrable)."""
        raise NotImplementedError

    def submit(self, request: JobRequest) -> H:
        raise NotImplementedError

    def look(self, handle: H) -> tuple[Progress, str]:
        """One look at the try: where it stands, and what to log when that text changes."""
        raise NotImplementedError

    def stop(self, handle: H, reason: str) -> None:
        """Stop every job or task of the try, saying why."""
        raise NotImplementedError

    def collect(self, handle: H) -> JobResult:
        """The result of a finished try, its shards' log lines printed on the way."""
        raise NotImplementedError

    def starved(self, handle: H) -> JobResult:
        """Nothing started before the start deadline: stop it, and say why as infrastructure."""
        raise NotImplementedError

    def timed_out(self, handle: H) -> JobResult:
        """Past the try's deadline (only for services that do not enforce it themselves)."""
        return self.collect(handle)

    def classify(self, handle: H, described: dict[str, Any], log_tail: list[str]
                 ) -> tuple[FailureClass | None, str, int | None, float]:
        """(class, reason, exit code, duration in seconds) of one finished job or task."""
        raise NotImplementedError

    def gone_reason(self, handle: H, shard: int) -> str:
        """Why a shard has no description to collect."""
        raise NotImplementedError

    def missing_reason(self, handle: H) -> str:
        """Why a try the service no longer knows failed (a trigger reported it missing)."""
        return (f"{self.service} no longer knows the jobs of this try (finished jobs expire from its history): "
                "a retry runs the shards that have no manifest")

    # -- the Protocol: run, wait, finish, cancel ------------------------------------------
    @property
    def deferrable_default(self) -> bool:
        return self.section.deferrable

    @property
    def poll_interval_s(self) -> float:
        return self.section.poll_interval.total_seconds()

    def run(self, request: JobRequest) -> JobResult:
        handle = self.submit(request)
        if not getattr(handle, "reattached", False):
            self._sleep(self.poll_interval_s)  # what was submitted this instant has not ended: no look yet
        return self.wait(handle)

    def wait(self, handle: H) -> JobResult:
        """Poll in this process until the try ends (or starves, or runs out of time), then collect it."""
        self._handle = handle
        last = ""
        while True:
            progress, said = self.look(handle)
            if said != last:
                self._log(f"{handle.name}: {said}")
                last = said
            if self._cancelled:
                return self.collect(handle)
            if progress.finished:
                return self.finish(handle, progress)
            self._sleep(self.poll_interval_s)

    def finish(self, handle: H, progress: Progress | None) -> JobResult:
        """The result once `progress` (from `wait` or a trigger's event; None: an event without one) is final."""
        if progress is Progress.not_started:
            return self.starved(handle)
        if progress is Progress.timed_out:
            return self.timed_out(handle)
        if progress is Progress.missing:
            return self.result(handle, [ShardOutcome(index=shard, failure=FailureClass.infrastructure,
                                                     reason=self.missing_reason(handle))
                                        for shard in handle.shards])
        return self.collect(handle)

    def cancel(self) -> None:
        """Airflow's on_kill: stop whatever this backend submitted or reattached to."""
        self._cancelled = True
        if self._handle is not None:
            self.stop(self._handle, STOPPED_BY_AIRFLOW)

    # -- shared pieces for subclasses ----------------------------------------------------
    def submit_checked(self, call: Callable[[], Any], name: str, image: str,
                       lookup: Callable[[str], object]) -> Any:
        """`call` (SubmitJob, RunTask); only when it fails is the definition looked up, to say when it is missing:
        a step that submits fine makes no lookup call."""
        try:
            return call()
        except Exception:
            self.require_definition(name, image, lookup(name))
            raise

    def require_definition(self, name: str, image: str, found: object) -> None:
        if found is None:
            raise SettingsError(
                f"{self.service} {self.definition_noun} {name!r} (image {image!r}) is not registered: "
                "run `mlbatch deploy --image-tag <tag>` once per worker image")

    def log_submission(self, request: JobRequest, what: str, timeout_note: str = "") -> None:
        """'churn.train: submitted ... : 2 vcpu, 3 GiB, 1 GPU, timeout 30m'."""
        self._log(f"{request.name}: {what}: {request.vcpu:g} vcpu, {format_mib(request.memory_mib)}"
                  + (f", {request.gpu} GPU" if request.gpu else "")
                  + (f", timeout {format_duration(request.timeout_s)}{timeout_note}" if request.timeout_s else ""))

    def report(self, handle: H, shards: Sequence[FinishedShard], fetch_lines: Callable[[str], list[str]],
               nouns: tuple[str, str]) -> JobResult:
        """Print each finished shard's log lines (capped), classify it, and gather the result."""
        outcomes = report_shards(list(shards), name=handle.name, shard_count=handle.shard_count,
                                 fetch_lines=fetch_lines, log=self._log, nouns=nouns,
                                 to_outcome=lambda shard, lines: self._outcome(handle, shard, lines))
        return self.result(handle, outcomes)

    @staticmethod
    def result(handle: RemoteHandle, outcomes: list[ShardOutcome]) -> JobResult:
        return JobResult(name=handle.name, shard_count=handle.shard_count, memory_mib=handle.memory_mib,
                         outcomes=outcomes)

    def _outcome(self, handle: H, shard: FinishedShard, lines: list[str]) -> ShardOutcome:
        if shard.described is None:
            return ShardOutcome(index=shard.index, failure=FailureClass.infrastructure,
                                reason=self.gone_reason(handle, shard.index))
        tail = lines[-LOG_TAIL_LINES:]
        failure, reason, exit_code, duration_s = self.classify(handle, shard.described, tail)
        return ShardOutcome(index=shard.index, exit_code=exit_code, duration_s=round(duration_s, 3),
                            failure=failure, reason=reason, stderr_tail=tail if failure else [])
