"""The job request every backend takes, and what comes back.

One `JobRequest` describes one try of one step: what to run (image, argv, env),
with what resources (vcpu, memory, gpu) and how wide (shards). The local backend
runs it as capped OS processes; AWS Batch and ECS backends take the very same
request, so nothing in it is specific to one backend. Imports no Airflow.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlbatch.backends.failures import FailureClass, failure_block


class JobRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="dag_id.step, e.g. 'churn_training.train'")
    image: str = Field(description="worker image; container backends run it, the local backend runs argv directly")
    command: list[str] = Field(min_length=1, description="arguments after the entrypoint (a container's CMD): "
                               "what AWS Batch's `command` and an ECS container override carry")
    entrypoint: list[str] | None = Field(
        None, description="None: the worker image's ENTRYPOINT (workers.wire.WORKER_ENTRYPOINT), which no "
        "container backend overrides; a local process runs it followed by `command`")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment of the worker")
    step_output: str | None = Field(
        None, description="image steps (workers.wire's image contract): the step's output URI. Each shard gets "
        "MLBATCH_OUTPUT, its own folder in it, and {shard.index} / {shard.count} filled in its command")
    vcpu: float = Field(1.0, gt=0)
    memory_mib: int = Field(2048, gt=0, description="memory budget of one shard")
    gpu: int = Field(0, ge=0)
    shard_count: int = Field(1, ge=1)
    shard_indices: list[int] | None = Field(
        None, description="which shards to run on this try (e.g. the ones without a manifest); None = all"
    )
    timeout_s: float | None = Field(None, gt=0, description="wall-clock deadline for the whole try")
    start_timeout_s: float | None = Field(
        None, gt=0, description="fail as infrastructure if no shard has started by then (capacity, queues)"
    )
    identity: str = Field("", description="what this try computes (the cache key): a live remote job with "
                          "the same identity is reattached to instead of submitting a second one")
    tags: dict[str, str] = Field(default_factory=dict, description="labels for cost and lookup (dag, run, step, ...)")
    queue: str | None = Field(None, description="queue role for container backends (cpu, gpu, cpu-spot, gpu-spot)")
    capacity: str = Field("on-demand", description="ECS capacity: on-demand or spot (GPU steps: the GPU provider)")
    network: Literal["none", "host"] | None = Field(
        None, description="the docker backend's container network, over its [docker] network setting; None: the "
        "setting. A local process shares the host's network; an AWS job has its compute environment's")

    @field_validator("shard_indices")
    @classmethod
    def _sorted_unique(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if len(set(value)) != len(value):
            raise ValueError(f"shard_indices has duplicates: {value}")
        return sorted(value)

    @model_validator(mode="after")
    def _indices_in_range(self) -> JobRequest:
        if self.shard_indices is not None:
            outside = [i for i in self.shard_indices if not 0 <= i < self.shard_count]
            if outside:
                raise ValueError(
                    f"shard_indices {outside} outside 0..{self.shard_count - 1} (shard_count={self.shard_count})"
                )
        return self

    @property
    def argv(self) -> list[str]:
        """The whole argv a container of the image (or a local process) runs: entrypoint + command."""
        from workers.wire import container_argv

        return container_argv(self.entrypoint, self.command)

    @property
    def indices(self) -> list[int]:
        """The shards this try runs."""
        return list(self.shard_indices) if self.shard_indices is not None else list(range(self.shard_count))


class ShardOutcome(BaseModel):
    """How one shard ended. exit_code is set when it exited, signal when a signal killed it."""

    model_config = ConfigDict(frozen=True)

    index: int
    exit_code: int | None = None
    signal: int | None = None
    peak_rss_mib: float = 0.0
    duration_s: float = 0.0
    failure: FailureClass | None = None
    reason: str = ""
    stderr_tail: list[str] = Field(default_factory=list)
    final: bool = Field(False, description="no retry can fix it though its class is retried (a missing image)")

    @property
    def ok(self) -> bool:
        return self.failure is None

    @property
    def retryable(self) -> bool:
        return self.failure is not None and self.failure.retryable and not self.final


class JobResult(BaseModel):
    """Outcomes of the shards that ran (by index), and the shards never started.

    Shards are not started after another shard failed (its outcome explains why),
    so `not_started` without a failure cannot happen; a deadline or a cancel that
    comes before a shard could start gives that shard an outcome of its own.
    """

    model_config = ConfigDict(frozen=True)

    name: str = ""
    shard_count: int = 1
    memory_mib: int | None = None
    outcomes: list[ShardOutcome] = Field(default_factory=list)
    not_started: list[int] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.not_started

    @property
    def failures(self) -> list[ShardOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def first_failure(self) -> ShardOutcome | None:
        failures = self.failures
        return failures[0] if failures else None

    def failure_report(self, max_stderr_lines: int = 10) -> str:
        """The failure blocks of every failed shard, for the task log and alerts."""
        return "\n".join(
            failure_block(
                failure=o.failure,
                reason=o.reason,
                shard_index=o.index,
                shard_count=self.shard_count,
                exit_code=o.exit_code,
                signal=o.signal,
                stderr_tail=o.stderr_tail,
                name=self.name or None,
                peak_rss_mib=o.peak_rss_mib if o.failure is FailureClass.oom else None,
                memory_mib=self.memory_mib,
                max_stderr_lines=max_stderr_lines,
                retryable=o.retryable,
            )
            for o in self.failures
            if o.failure is not None
        )
