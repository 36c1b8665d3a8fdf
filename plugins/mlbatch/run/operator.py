"""The step operator: resolve inputs and shards, launch missing shards via a backend, commit.

It only orchestrates. What a worker does lives in workers/, how a process or a job is
run lives in mlbatch.backends, what a failure means lives in mlbatch.backends.failures.
"""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from mlbatch.run.paths import PROJECT_ROOT, artifact_root, run_key, step_output_uri
from mlbatch.run.step_errors import FailureDetails, StepFailed, StepFailedFast

if TYPE_CHECKING:
    from mlbatch.backends.protocols import Backend, RemoteBackend
    from mlbatch.cache.locks import LeaseLock
    from mlbatch.backends.jobs import JobRequest, JobResult
    from mlbatch.spec.models import ResolvedStep


class StepOperator(BaseOperator):
    """Runs one batch step: every shard in its own isolated worker."""

    ui_color = "#dbeafe"

    def __init__(self, *, batch_id: str, step: ResolvedStep, record_run: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_id = batch_id
        self.step = step
        self.record_run = record_run  # keep a per-run record of each step for the success digest
        self._backend = None
        self._backend_handle = None
        self._run_id = ""
        self._redact = lambda text: text

    # -- Airflow entry points -------------------------------------------------
    def execute(self, context: Any) -> dict[str, Any]:
        from mlbatch.run.sharding import ShardSizingError, resolve_shard_count

        self._begin(context)
        ti = context["ti"]
        upstream = {name: ti.xcom_pull(task_ids=name) for name in self.step.needs}
        try:
            shard_count = resolve_shard_count(self.step.shards, upstream)
        except ShardSizingError as error:
            raise AirflowFailException(f"step {self.step.name}: {error}") from None
        started = time.time()
        summary = self._cached_or_computed(context, upstream, shard_count, started)
        return self._recorded(summary, started, ti.try_number)

    def resume_remote(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Back from the triggerer: collect the finished remote job, then commit as execute() would."""
        self._begin(context)
        from mlbatch.run.deferral import RemoteState

        saved = RemoteState.model_validate((event or {})["resume"])
        from mlbatch.backends.protocols import Progress, RemoteBackend

        backend = self._make_backend()
        if not isinstance(backend, RemoteBackend):
            raise AirflowFailException(f"step {self.step.name}: backend {self.step.backend!r} cannot resume a deferral")
        handle = backend.handle_type.model_validate(saved.handle)
        self._backend_handle = handle
        state = event.get("state")
        result = backend.finish(handle, Progress(state) if state else None)
        summary = self._finish(context, saved.output, saved.shard_count, saved.key, saved.ingredients,
                               saved.todo, saved.started, result, saved.memory_mib)
        return self._recorded(summary, saved.started, context["ti"].try_number)

    def _begin(self, context: Any) -> None:
        from mlbatch.run.secrets import mask_secret_env

        self._redact = mask_secret_env()
        self._run_id = context["run_id"]
        self._outlet_events = context.get("outlet_events")

    def _recorded(self, summary: dict[str, Any], started: float, try_number: int) -> dict[str, Any]:
        if self.record_run:
            from mlbatch.run.run_index import record_step

            record_step(artifact_root(), self.batch_id, self._run_id, self.step.name, {
                "cache_hit": summary["cache_hit"], "metrics": summary["metrics"], "counts": summary["counts"],
                "duration_s": round(time.time() - started, 3), "try_number": try_number})
        return summary

    def _compute(self, context: Any, upstream: dict, output: str, shard_count: int, key: str,
                 ingredients: dict[str, Any], started: float) -> dict[str, Any]:
        """Run the shards of `output` that are not committed yet, then commit the step."""
        from workers.artifacts import missing_shards

        ti = context["ti"]
        todo = missing_shards(output, shard_count)
        done = shard_count - len(todo)
        self.log.info("step %s: cache key %s, %d shard(s), %d already committed, output %s",
                      self.step.name, key, shard_count, done, output)
        result, memory_mib = None, self.step.memory_mib
        if todo:
            from mlbatch.backends.protocols import RemoteBackend

            backend = self._make_backend()
            remote = isinstance(backend, RemoteBackend)
            request = self._job_request(upstream, output, shard_count, todo, ti.try_number, key, context,
                                        in_container=self.step.backend != "local")
            memory_mib = request.memory_mib
            if remote:
                result = self._run_remote(backend, request, output, shard_count, key, ingredients, started)
            else:
                result = self._run(request)
        return self._finish(context, output, shard_count, key, ingredients, todo, started, result, memory_mib)

    def _finish(self, context: Any, output: str, shard_count: int, key: str, ingredients: dict[str, Any],
                todo: list[int], started: float, result: JobResult | None, memory_mib: int) -> dict[str, Any]:
        """Fail the try with its class, or commit the step from its shard manifests."""
        from workers.artifacts import commit_step, missing_shards

        ti = context["ti"]
        if result is not None and not result.ok:
            self._fail(result, memory_mib, ti.try_number)
        if todo and (unwritten := missing_shards(output, shard_count)):
            # A backend can say "succeeded" for a container that never wrote its output (wrong
            # artifact root, no write permission): that must not look done.
            from mlbatch.backends.failures import FailureClass

            raise StepFailed(FailureDetails(FailureClass.code_error, (
                f"the workers of shards {unwritten[:20]} ended successfully but committed no manifest under "
                f"{output}: check that the artifact root is reachable and writable from the worker")))
        run: dict[str, Any] = {"run_id": context["run_id"], "try_number": ti.try_number, "shards_run": todo,
                               "duration_s": round(time.time() - started, 3)}
        if result is not None:
            from mlbatch.run.cost import usage

            run.update(usage(result, self.step, self._backend_handle))
        manifest = commit_step(output, shard_count, extra={"run": run, "cache": ingredients})
        self._publish(key, output, manifest, cache_hit=False)
        return self._tracked(self._summary(key, output, manifest, cache_hit=False), manifest)

    def on_kill(self) -> None:
        # Airflow calls this when the task is marked failed or killed: take the workers with it.
        if self._backend is not None:
            self._backend.cancel()

    # -- cache ----------------------------------------------------------------
    def _cached_or_computed(self, context: Any, upstream: dict, shard_count: int, started: float) -> dict[str, Any]:
        """The step's committed output for its cache key: reused if there, else computed once."""
        from mlbatch.cache import keys as cache

        try:
            refresh = cache.cache_mode(getattr(context.get("dag_run"), "conf", None)) == cache.REFRESH
        except ValueError as error:
            raise AirflowFailException(f"step {self.step.name}: {error}") from None
        key, ingredients = self._cache_key(upstream, shard_count)
        output = step_output_uri(artifact_root(), self.batch_id, self.step.name, key)
        if not refresh and (hit := self._cache_hit(key, output)) is not None:
            return hit
        lock = self._lock_key(key)  # waits while another run computes the same key
        try:
            if refresh and cache.refreshed_by(output) == self._run_id:
                refresh = False  # this run has refreshed the key already: a retry resumes
            if not refresh and (hit := self._cache_hit(key, output)) is not None:
                return hit  # committed by the run we waited for
            if refresh:
                self.log.info("cache refresh: recomputing every shard of key %s", key)
                cache.uncommit(output, self._run_id)
            return self._compute(context, upstream, output, shard_count, key, ingredients, started)
        finally:
            lock.release()

    def _cache_key(self, upstream: dict, shard_count: int) -> tuple[str, dict[str, Any]]:
        """The key and what went into it (kept in the step manifest, to tell why a key changed)."""
        from mlbatch.cache import keys as cache

        inputs = {name: summary.get("key") or summary["uri"] for name, summary in upstream.items()}
        inputs.update(cache.external_input_keys(self.step.run, self.step.params, artifact_root()))
        if self.step.cache_version is not None:
            version = f"spec:{self.step.cache_version}"
        else:
            # the local backend runs this host's workers/, whatever image the spec names
            version = cache.code_version(None if self.step.backend == "local" else self.step.image)
        salt = None if self.step.cache else run_key(self._run_id)  # cache: false -> never reused by another run
        key = cache.step_key(self.step.run, self.step.params, inputs, shard_count, version, salt=salt)
        ingredients: dict[str, Any] = {"key": key, "code_version": version, "inputs": inputs}
        if salt is not None:
            ingredients["run"] = salt
        return key, ingredients

    def _cache_hit(self, key: str, output: str) -> dict[str, Any] | None:
        from workers.artifacts import read_json, step_manifest_uri

        try:
            manifest = read_json(step_manifest_uri(output))  # the step's commit: every shard is there
        except FileNotFoundError:
            return None
        run = manifest.get("run") or {}
        self.log.info("cache hit %s (computed by run %s at %s)", key, run.get("run_id", "?"),
                      manifest.get("committed_at", "?"))
        self._publish(key, output, manifest, cache_hit=True)
        return self._tracked(self._summary(key, output, manifest, cache_hit=True), manifest)

    @staticmethod
    def _summary(key: str, output: str, manifest: dict[str, Any], *, cache_hit: bool) -> dict[str, Any]:
        """The XCom summary, from the committed manifest alone: the same on a hit as on the run that computed it."""
        run = manifest.get("run") or {}
        return {
            "key": key,
            "uri": output,
            "shard_count": manifest["shard_count"],
            "shards_run": run.get("shards_run", []),
            "counts": manifest.get("counts", {}),
            "metrics": manifest.get("metrics", {}),
            "peak_rss_mib": run.get("peak_rss_mib", 0.0),
            "usage": run.get("usage"),
            "computed_by": run.get("run_id"),
            "cache_hit": cache_hit,
        }

    def _tracked(self, summary: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
        """Log a model step to MLflow (a hit logs nothing and names the run that computed it)."""
        from workers.registry import get_worker

        if not get_worker(self.step.run).tracked:
            return summary
        from mlbatch.settings import load_settings

        if not load_settings().tracking.mlflow:
            return summary
        from mlbatch.tracking.content import StepRecord
        from mlbatch.tracking.steps import track_step

        record = StepRecord(self.batch_id, summary["computed_by"] or self._run_id, self.step.name, self.step.run,
                            summary["key"], manifest)
        where = track_step(record, root=artifact_root(), cache_hit=summary["cache_hit"], log=self.log)
        return {**summary, "mlflow": where} if where else summary

    def _publish(self, key: str, output: str, manifest: dict[str, Any], *, cache_hit: bool) -> None:
        """Past its gate (mlbatch.run.gates), point latest.json here and announce it as an asset event."""
        from mlbatch.run.assets import announce, event_extra
        from mlbatch.run.gates import enforce_gate

        enforce_gate(self.step, self.batch_id, key, manifest, self.log)
        moved = self._point_latest(output, manifest)
        announce(self, self._outlet_events, event_extra(key, output, manifest, cache_hit=cache_hit), moved=moved)

    def _point_latest(self, output: str, manifest: dict[str, Any]) -> bool:
        """Point the step's latest.json here; left alone (False) when it already does (a hit rewrites nothing)."""
        from workers.artifacts import latest_pointer_uri, publish_latest, read_json

        pointer = latest_pointer_uri(artifact_root(), self.batch_id, self.step.name)
        computed_by = (manifest.get("run") or {}).get("run_id", self._run_id)
        try:
            if read_json(pointer) == {"uri": output, "run_id": computed_by}:
                return False
        except (FileNotFoundError, ValueError):
            pass
        publish_latest(artifact_root(), self.batch_id, self.step.name, output, computed_by)
        return True

    def _lock_key(self, key: str) -> LeaseLock:
        from mlbatch.cache.locks import LeaseLock

        uri = step_output_uri(artifact_root(), self.batch_id, self.step.name, key) + ".lock"
        lock = LeaseLock(uri, run_id=self._run_id, log=self.log.warning)
        if not lock.supported:
            self.log.warning("no lock on this artifact store: concurrent runs may compute key %s twice", key)
        lock.acquire(on_wait=lambda lease: self.log.info("waiting for run %s computing key %s", lease.run_id, key))
        return lock

    # -- helpers --------------------------------------------------------------
    def _job_request(self, upstream: dict, output: str, shard_count: int, todo: list[int], try_number: int,
                     key: str, context: Any, *, in_container: bool) -> JobRequest:
        from mlbatch.backends.jobs import JobRequest
        from workers.wire import run_command

        step_request = {
            "worker": self.step.run,
            "params": self.step.params,
            "inputs": {name: summary["uri"] for name, summary in upstream.items()},
            "output": output,
            "shard_index": 0,
            "shard_count": shard_count,
        }
        env = {"MLBATCH_TRY_NUMBER": str(try_number), "MLBATCH_ARTIFACTS": artifact_root()}
        if self.step.gpu:  # a GPU worker says so in its log when it finds none and falls back to CPU
            env["MLBATCH_GPU"] = str(self.step.gpu)
        if not in_container:  # a container runs its image's code; a local worker imports this checkout's workers/
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
        return JobRequest(
            name=f"{self.batch_id}.{self.step.name}",
            image=self.step.image,
            command=run_command(step_request),
            env=env,
            vcpu=self.step.vcpu,
            memory_mib=self._memory_budget(),
            gpu=self.step.gpu,
            shard_count=shard_count,
            shard_indices=todo,
            timeout_s=self.step.timeout.total_seconds(),
            start_timeout_s=self.step.start_timeout.total_seconds(),
            identity=key,
            queue=self.step.queue,
            capacity=self.step.capacity,
            tags={"dag": self.batch_id, "step": self.step.name, "run": context["run_id"], "try": str(try_number),
                  "key": key, "owner": str(self.owner)},
        )

    def _budget_uri(self) -> str:
        from mlbatch.run.oom_growth import budget_uri

        return budget_uri(artifact_root(), self.batch_id, self.step.name, self._run_id)

    def _memory_budget(self) -> int:
        if self.step.oom_grow is None:
            return self.step.memory_mib
        from mlbatch.run.oom_growth import current_budget

        budget = current_budget(self._budget_uri(), self.step.memory_mib)
        if budget != self.step.memory_mib:
            self.log.info("memory budget %d MiB (grown from %d MiB after an out-of-memory try; on_oom.max %d MiB)",
                          budget, self.step.memory_mib, self.step.oom_max_mib)
        return budget

    def _make_backend(self) -> Backend:
        from mlbatch.backends import UnknownBackendError, get_backend
        from mlbatch.settings import SettingsError

        try:
            self._backend = get_backend(self.step.backend, log=lambda line: self.log.info("%s", self._redact(line)))
        except (UnknownBackendError, SettingsError) as error:
            raise AirflowFailException(f"step {self.step.name}: {error}") from None
        return self._backend

    def _run(self, request: JobRequest) -> JobResult:
        try:
            return self._backend.run(request)
        except BaseException:
            # Airflow's execution_timeout or a signal interrupted us: never leave workers behind.
            self._backend.cancel()
            raise

    def _run_remote(self, backend: RemoteBackend, request: JobRequest, output: str, shard_count: int, key: str,
                    ingredients: dict[str, Any], started: float) -> JobResult:
        """Submit (or reattach), then wait here or in the triggerer; a config error fails at once."""
        from mlbatch.run.deferral import RemoteState, remote_artifact_problem
        from mlbatch.settings import SettingsError

        if problem := remote_artifact_problem(artifact_root(), self.step.backend):
            raise AirflowFailException(f"step {self.step.name}: {problem}")
        try:
            handle = backend.submit(request)
        except (SettingsError, ValueError) as error:
            raise AirflowFailException(f"step {self.step.name}: {error}") from None
        self._backend_handle = handle
        deferrable = self.step.deferrable if self.step.deferrable is not None else backend.deferrable_default
        if deferrable:
            # The cache lock is released when this task process leaves; while the job runs, the
            # live job itself keeps a second run with the same key from submitting again (reattach).
            state = RemoteState(handle=handle.model_dump(mode="json"), output=output, shard_count=shard_count,
                                key=key, ingredients=ingredients, todo=list(request.indices), started=started,
                                memory_mib=request.memory_mib)
            # The state rides in the trigger's event: `airflow dags test` resumes a task with
            # the event alone, dropping the kwargs given here.
            self.defer(trigger=backend.trigger(handle, resume=state.model_dump(mode="json")),
                       method_name="resume_remote")
        try:
            return backend.wait(handle)
        except BaseException:
            backend.cancel()
            raise

    def _fail(self, result: JobResult, memory_mib: int, try_number: int) -> None:
        from mlbatch.backends.failures import FailureClass

        failure = result.first_failure
        if failure is None:  # shards left unstarted without a failure of their own
            raise StepFailed(FailureDetails(FailureClass.infrastructure, f"shards {result.not_started} did not start"))
        # The backend has already logged each failed shard's block (class, exit, reason, stderr).
        details = FailureDetails(failure.failure, self._redact(failure.reason), f"{failure.index}/{result.shard_count}",
                                 tuple(self._redact(line) for line in failure.stderr_tail[-10:]))
        if failure.failure is FailureClass.oom and self._grow_memory(memory_mib, try_number):
            raise StepFailed(details)
        if not failure.failure.retryable:
            raise StepFailedFast(details)  # bad input and OOM: a retry would fail the same way
        raise StepFailed(details)

    def _grow_memory(self, memory_mib: int, try_number: int) -> bool:
        """With on_oom, record a larger budget for the next try; False when there is none to give."""
        from mlbatch.run.oom_growth import grown_budget, save_budget

        if self.step.oom_grow is None:
            return False
        grown = grown_budget(memory_mib, self.step.oom_grow, self.step.oom_max_mib)
        if grown is None:
            self.log.warning("out of memory at the on_oom.max budget of %d MiB: not retrying", memory_mib)
            return False
        save_budget(self._budget_uri(), grown, try_number)
        self.log.warning("out of memory with %d MiB: the next try gets %d MiB (on_oom: grow %g, max %d MiB)",
                         memory_mib, grown, self.step.oom_grow, self.step.oom_max_mib)
        return True
