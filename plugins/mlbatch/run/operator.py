"""The step operator: resolve inputs and shards, launch missing shards via a backend, commit.

It only orchestrates: the cache check, one StepTry (run/step_try.py) handed from computing
to committing, and a backend typed by its Protocol (mlbatch.backends.protocols). What a
worker does lives in workers/, the request it gets in run/job_request.py, how a process or
a job is run in mlbatch.backends, what a failure means in run/step_errors.py.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from mlbatch.run.paths import artifact_root, step_output_uri
from mlbatch.ui.link import MlbatchPageLink

if TYPE_CHECKING:
    from mlbatch.backends.jobs import JobRequest, JobResult
    from mlbatch.backends.protocols import Backend, RemoteBackend
    from mlbatch.run.step_try import StepTry
    from mlbatch.spec.models import ResolvedStep


class StepOperator(BaseOperator):
    """Runs one batch step: every shard in its own isolated worker."""

    ui_color = "#dbeafe"
    operator_extra_links = (MlbatchPageLink(),)  # back to this run on the mlbatch page

    def __init__(self, *, batch_id: str, step: ResolvedStep, record_run: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_id = batch_id
        self.step = step
        self.record_run = record_run  # keep a per-run record of each step for the success digest
        self._backend: Backend | None = None
        self._backend_handle: Any = None
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
        from mlbatch.backends.protocols import Progress, RemoteBackend
        from mlbatch.run.step_try import StepTry

        self._begin(context)
        event = event or {}
        step_try = StepTry.model_validate(event["resume"])
        backend = self._make_backend()
        if not isinstance(backend, RemoteBackend):
            raise AirflowFailException(f"step {self.step.name}: backend {self.step.backend!r} cannot resume a deferral")
        handle = self._backend_handle = backend.handle_type.model_validate(step_try.handle)
        state = event.get("state")
        result = backend.finish(handle, Progress(state) if state else None)
        summary = self._finish(context, step_try, result)
        return self._recorded(summary, step_try.started, context["ti"].try_number)

    def on_kill(self) -> None:
        # Airflow calls this when the task is marked failed or killed: take the workers with it.
        if self._backend is not None:
            self._backend.cancel()

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

    # -- computing and committing ---------------------------------------------------
    def _compute(self, context: Any, upstream: dict, step_try: StepTry) -> dict[str, Any]:
        """Run the shards of the step that are not committed yet, then commit the step."""
        from mlbatch.backends.protocols import RemoteBackend
        from mlbatch.backends.traits import backend_info, unseen_disk_problem
        from mlbatch.run import publish
        from mlbatch.run.job_request import job_request

        self.log.info("step %s: cache key %s, %d shard(s), %d already committed, output %s",
                      self.step.name, step_try.key, step_try.shard_count, step_try.done, step_try.output)
        if not step_try.todo:
            return self._finish(context, step_try, None)
        if problem := unseen_disk_problem(backend_info(self.step.backend), artifact_root()):
            raise AirflowFailException(f"step {self.step.name}: {problem}")
        backend = self._make_backend()
        remote = isinstance(backend, RemoteBackend)
        request = job_request(self.step, self.batch_id, step_try, upstream=upstream, artifacts=artifact_root(),
                              run_id=self._run_id, try_number=context["ti"].try_number, owner=str(self.owner))
        publish.preload_tracking(self.step)
        if remote:
            result = self._run_remote(backend, request, step_try)
        else:
            result = self._cancelling(backend, lambda: self._configured(lambda: backend.run(request)))
        return self._finish(context, step_try, result)

    def _finish(self, context: Any, step_try: StepTry, result: JobResult | None) -> dict[str, Any]:
        """Fail the try with its class, or commit the step from its shard manifests."""
        from mlbatch.run.oom_growth import grow_after_oom
        from mlbatch.run.step_errors import (FAILURE_XCOM_KEY, StepFailed, StepFailedFast, failure_record,
                                             raise_for, unwritten_failure)
        from workers.step_output import StepOutput

        try_number = context["ti"].try_number
        if result is not None and self.step.command is not None:
            from mlbatch.run import image_shards

            # a command cannot commit its own shards: those that exited 0 and wrote output are committed here
            result = image_shards.commit_written(step_try.output, image_shards.explained(result, self.step),
                                                 params=self.step.params, try_number=try_number)
        if result is not None and not result.ok:
            try:
                raise_for(result, redact=self._redact, grew_memory=lambda: grow_after_oom(
                    self.step, self._budget_uri(), step_try.memory_mib, try_number, self.log))
            except (StepFailed, StepFailedFast) as failed:
                # A failed task has no return value: this is what the run summary shows for it.
                context["ti"].xcom_push(key=FAILURE_XCOM_KEY, value=failure_record(failed.details, result))
                raise
        output = StepOutput(step_try.output)
        if step_try.todo and (unwritten := output.missing(step_try.shard_count)):
            # A backend can say "succeeded" for a container that never wrote its output.
            raise unwritten_failure(unwritten, step_try.output)
        run: dict[str, Any] = {"run_id": context["run_id"], "try_number": try_number, "shards_run": step_try.todo,
                               "duration_s": round(time.time() - step_try.started, 3)}
        if result is not None:
            from mlbatch.run.cost import usage

            run.update(usage(result, self.step, self._backend_handle))
        extra = {"run": run, "cache": step_try.ingredients}
        if self.step.command is not None:
            from workers.shard_metrics import mean_over_shards

            extra["metrics"] = mean_over_shards(output.shard_manifests(step_try.shard_count))
        manifest = output.commit(step_try.shard_count, extra=extra)
        return self._published(step_try.key, step_try.output, manifest, cache_hit=False)

    # -- cache ----------------------------------------------------------------
    def _cached_or_computed(self, context: Any, upstream: dict, shard_count: int, started: float) -> dict[str, Any]:
        """The step's committed output for its cache key: reused if there, else computed once."""
        from mlbatch.cache import keys as cache
        from mlbatch.run.step_cache import key_lock, step_cache_key

        try:
            refresh = cache.cache_mode(getattr(context.get("dag_run"), "conf", None)) == cache.REFRESH
        except ValueError as error:
            raise AirflowFailException(f"step {self.step.name}: {error}") from None
        key, ingredients = step_cache_key(self.step, upstream, shard_count, self._run_id, log=self.log)
        output = step_output_uri(artifact_root(), self.batch_id, self.step.name, key)
        if not refresh and (hit := self._cache_hit(key, output)) is not None:
            return hit
        lock = key_lock(output, key, self._run_id, self.log)  # waits while another run computes the same key
        try:
            if refresh and cache.refreshed_by(output) == self._run_id:
                refresh = False  # this run has refreshed the key already: a retry resumes
            if not refresh and (hit := self._cache_hit(key, output)) is not None:
                return hit  # committed by the run we waited for
            if refresh:
                self.log.info("cache refresh: recomputing every shard of key %s", key)
                cache.uncommit(output, self._run_id)
            return self._compute(context, upstream, self._new_try(output, shard_count, key, ingredients, started))
        finally:
            lock.release()

    def _new_try(self, output: str, shard_count: int, key: str, ingredients: dict[str, Any],
                 started: float) -> StepTry:
        from mlbatch.run.oom_growth import try_budget
        from mlbatch.run.step_try import StepTry
        from workers.step_output import StepOutput

        todo = StepOutput(output).missing(shard_count)
        memory_mib = try_budget(self.step, self._budget_uri, self.log) if todo else self.step.memory_mib
        return StepTry(output=output, shard_count=shard_count, key=key, ingredients=ingredients, todo=todo,
                       started=started, memory_mib=memory_mib)

    def _cache_hit(self, key: str, output: str) -> dict[str, Any] | None:
        from workers.step_output import StepOutput

        manifest = StepOutput(output).manifest()  # the step's commit: every shard is there
        if manifest is None:
            return None
        run = manifest.get("run") or {}
        self.log.info("cache hit %s (computed by run %s at %s)", key, run.get("run_id", "?"),
                      manifest.get("committed_at", "?"))
        return self._published(key, output, manifest, cache_hit=True)

    def _published(self, key: str, output: str, manifest: dict[str, Any], *, cache_hit: bool) -> dict[str, Any]:
        """Past its gate, point latest.json here, announce the asset event, track it; the XCom summary."""
        from mlbatch.run import publish
        from mlbatch.run.assets import announce, event_extra
        from mlbatch.run.gates import enforce_gate

        enforce_gate(self.step, self.batch_id, key, manifest, self.log)
        moved = publish.point_latest(artifact_root(), self.batch_id, self.step.name, output, manifest, self._run_id)
        announce(self, self._outlet_events, event_extra(key, output, manifest, cache_hit=cache_hit), moved=moved)
        summary = publish.summary(key, output, manifest, cache_hit=cache_hit)
        return publish.tracked(self.step, self.batch_id, self._run_id, artifact_root(), summary, manifest, self.log)

    # -- backends -------------------------------------------------------------
    def _budget_uri(self) -> str:
        from mlbatch.run.oom_growth import budget_uri

        return budget_uri(artifact_root(), self.batch_id, self.step.name, self._run_id)

    def _make_backend(self) -> Backend:
        from mlbatch.backends import UnknownBackendError, get_backend
        from mlbatch.settings import SettingsError

        try:
            self._backend = get_backend(self.step.backend, log=lambda line: self.log.info("%s", self._redact(line)))
        except (UnknownBackendError, SettingsError) as error:
            raise AirflowFailException(f"step {self.step.name}: {error}") from None
        return self._backend

    def _configured(self, call: Callable[[], JobResult]) -> JobResult:
        """A backend's settings error fails the step at once: a retry would meet the same settings."""
        from mlbatch.settings import SettingsError

        try:
            return call()
        except SettingsError as error:
            raise AirflowFailException(f"step {self.step.name}: {error}") from None

    @staticmethod
    def _cancelling(backend: Backend, call: Callable[[], JobResult]) -> JobResult:
        try:
            return call()
        except BaseException:
            # Airflow's execution_timeout or a signal interrupted us: never leave workers behind.
            backend.cancel()
            raise

    def _run_remote(self, backend: RemoteBackend, request: JobRequest, step_try: StepTry) -> JobResult:
        """Submit (or reattach), then wait here or in the triggerer; a config error fails at once."""
        from mlbatch.settings import SettingsError

        try:
            handle = self._backend_handle = backend.submit(request)
        except (SettingsError, ValueError) as error:
            raise AirflowFailException(f"step {self.step.name}: {error}") from None
        deferrable = self.step.deferrable if self.step.deferrable is not None else backend.deferrable_default
        if deferrable:
            # The cache lock is released when this task process leaves; while the job runs, the
            # live job itself keeps a second run with the same key from submitting again (reattach).
            # The try rides in the trigger's event: `airflow dags test` resumes a task with the
            # event alone, dropping the kwargs given here.
            resume = step_try.model_copy(update={"handle": handle.model_dump(mode="json")})
            self.defer(trigger=backend.trigger(handle, resume=resume.model_dump(mode="json")),
                       method_name="resume_remote")
        return self._cancelling(backend, lambda: backend.wait(handle))
