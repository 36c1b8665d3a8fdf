"""The step operator: resolve inputs and shards, launch missing shards via a backend, commit.

It only orchestrates. What a worker does lives in workers/, how a process or a job is
run lives in mlbatch.backends, what a failure means lives in mlbatch.failures.
"""
from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from mlbatch.paths import PROJECT_ROOT, artifact_root, run_key, step_output_uri

if TYPE_CHECKING:
    from mlbatch.jobs import JobRequest, JobResult
    from mlbatch.spec import ResolvedStep


class StepFailed(Exception):
    """A failed try that Airflow may retry (its class is retryable)."""


class StepOperator(BaseOperator):
    """Runs one batch step: every shard in its own isolated worker."""

    ui_color = "#dbeafe"

    def __init__(self, *, batch_id: str, step: ResolvedStep, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_id = batch_id
        self.step = step
        self._backend = None

    # -- Airflow entry points -------------------------------------------------
    def execute(self, context: Any) -> dict[str, Any]:
        from workers.artifacts import commit_step, missing_shards, publish_latest

        from mlbatch.sharding import ShardSizingError, resolve_shard_count

        ti = context["ti"]
        upstream = {name: ti.xcom_pull(task_ids=name) for name in self.step.needs}
        output = step_output_uri(artifact_root(), self.batch_id, self.step.name, run_key(context["run_id"]))
        try:
            shard_count = resolve_shard_count(self.step.shards, upstream)
        except ShardSizingError as error:
            raise AirflowFailException(f"step {self.step.name}: {error}") from None
        todo = missing_shards(output, shard_count)
        done = shard_count - len(todo)
        self.log.info("step %s: %d shard(s), %d already committed, output %s",
                      self.step.name, shard_count, done, output)

        started = time.monotonic()
        peak_mib = 0.0
        if todo:
            request = self._job_request(upstream, output, shard_count, todo, ti.try_number)
            result = self._run(request)
            peak_mib = max((o.peak_rss_mib for o in result.outcomes), default=0.0)
            if not result.ok:
                self._fail(result)
        manifest = commit_step(output, shard_count, extra={
            "run": {"run_id": context["run_id"], "try_number": ti.try_number, "shards_run": todo,
                    "peak_rss_mib": round(peak_mib, 1), "duration_s": round(time.monotonic() - started, 3)},
        })
        publish_latest(artifact_root(), self.batch_id, self.step.name, output, context["run_id"])
        return {
            "uri": output,
            "shard_count": shard_count,
            "shards_run": todo,
            "counts": manifest.get("counts", {}),
            "metrics": manifest.get("metrics", {}),
            "peak_rss_mib": round(peak_mib, 1),
        }

    def on_kill(self) -> None:
        # Airflow calls this when the task is marked failed or killed: take the workers with it.
        if self._backend is not None:
            self._backend.cancel()

    # -- helpers --------------------------------------------------------------
    def _job_request(self, upstream: dict, output: str, shard_count: int, todo: list[int],
                     try_number: int) -> JobRequest:
        from mlbatch.jobs import JobRequest

        step_request = {
            "worker": self.step.run,
            "params": self.step.params,
            "inputs": {name: summary["uri"] for name, summary in upstream.items()},
            "output": output,
            "shard_index": 0,
            "shard_count": shard_count,
        }
        return JobRequest(
            name=f"{self.batch_id}.{self.step.name}",
            image=self.step.image,
            command=["python", "-m", "workers", "run", "--request", json.dumps(step_request)],
            env={
                "MLBATCH_TRY_NUMBER": str(try_number),
                "MLBATCH_ARTIFACTS": artifact_root(),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
            },
            vcpu=self.step.vcpu,
            memory_mib=self.step.memory_mib,
            gpu=self.step.gpu,
            shard_count=shard_count,
            shard_indices=todo,
            timeout_s=self.step.timeout.total_seconds(),
        )

    def _run(self, request: JobRequest) -> JobResult:
        from mlbatch.backends import UnknownBackendError, get_backend

        try:
            self._backend = get_backend(self.step.backend, log=self.log.info)
        except UnknownBackendError as error:
            raise AirflowFailException(f"step {self.step.name}: {error}") from None
        try:
            return self._backend.run(request)
        except BaseException:
            # Airflow's execution_timeout or a signal interrupted us: never leave workers behind.
            self._backend.cancel()
            raise

    def _fail(self, result: JobResult) -> None:
        failure = result.first_failure
        if failure is None:  # shards left unstarted without a failure of their own
            raise StepFailed(f"shards {result.not_started} did not start")
        # The backend has already logged each failed shard's block (class, exit, reason, stderr).
        message = f"{failure.failure.value}: {failure.reason}"
        if not failure.failure.retryable:
            # Airflow's way to say "do not retry": bad input and OOM fail fast.
            raise AirflowFailException(message)
        raise StepFailed(message)
