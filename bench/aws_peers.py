"""A no-op step on AWS Batch and ECS, mlbatch's backends beside the Amazon provider's own operators.

Everything runs against the local AWS stand-in (tests/integration/aws_stand_in.py): moto_server in
this process, whose Batch jobs and ECS tasks run as real containers of the worker image. Each round
runs, in turn: AwsBatchBackend.run, the provider's BatchOperator (deferrable=False), EcsBackend.run
and the provider's EcsRunTaskOperator (deferrable=False, wait_for_completion=True). The operators get
the same job definition / task definition, command and environment as mlbatch submits (built by
mlbatch's own submission functions), and their own defaults otherwise. Wall time is from the start of
the task's work (a new backend or operator: its connection and clients) to its end; every AWS API
call any client of this process makes meanwhile is counted by operation (botocore's before-call
event), moto's own bookkeeping aside.
"""
from __future__ import annotations

import time
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

from bench import machine
from bench.aws_batch import noop_request, on_stand_in
from bench.stats import median, ms, p90

NAME = "AWS Batch and ECS against the Amazon provider's operators"
MEASURES = (
    "A no-op step (check.noop writing to the stand-in's S3) on the local AWS stand-in (moto_server in-process, "
    "each Batch job and ECS task run as a container of the worker image: no real queue, placement or image pull), "
    "{runs} rounds after one untimed round, each round running every side once in turn: mlbatch's "
    "AwsBatchBackend.run and EcsBackend.run (poll interval 0.3 s, the stand-in's settings, and {slow} s, about "
    "the provider's cadence; the request has a cache key, as the operator gives it, so mlbatch first looks for "
    "a live job or task to reattach to) and the provider's "
    "BatchOperator (deferrable=False, its defaults: a random 1-10 s delay before each status poll) and "
    "EcsRunTaskOperator (deferrable=False, its waiter's 6 s delay), with the same definitions, command and "
    "environment; then each deferred: the task's part, the trigger run to its event in this process (as the "
    "triggerer runs it) and the resumed task's part (the provider's BatchOperator at poll_interval={slow}, its "
    "EcsRunTaskOperator at its defaults). Wall time from a new backend or operator to the end of the step; AWS API calls of the step by "
    "operation (all clients, the logs too)."
)
RUNS = 3
SIDES = ("mlbatch_batch", "mlbatch_batch_slow", "provider_batch", "mlbatch_batch_deferred", "provider_batch_deferred",
         "mlbatch_ecs", "mlbatch_ecs_slow", "provider_ecs", "mlbatch_ecs_deferred", "provider_ecs_deferred")
SLOW_POLL_S = 5  # mlbatch polling about as often as the provider's operators do
MEASURES = MEASURES.format(runs=RUNS, slow=SLOW_POLL_S)


def run() -> dict:
    from tests.containers import images
    from tests.integration.aws_stand_in import AwsStandIn

    client = images.connect()
    if client is None:
        raise RuntimeError(f"no Docker engine: {images.ENABLE_HINT}")
    worker = images.ensure_images(client)[1]
    load_before = machine.load_average()
    # "airflow.task": the operators' info lines, each printing whole API responses
    with on_stand_in(AwsStandIn(client, worker), quiet=("airflow.task",)) as (_, settings_file):
        runs = _rounds(_sides(settings_file))
    result: dict[str, Any] = {"runs": RUNS, "load_before": load_before, "load_after": machine.load_average(),
                              "raw": runs}
    for side in SIDES:
        result[side] = side_summary(runs[side])
    return result


def side_summary(runs: list[dict]) -> dict:
    totals = [sum(r["calls"].values()) for r in runs]
    return {"median_s": median([r["s"] for r in runs]), "p90_s": p90([r["s"] for r in runs]),
            "calls_median": median(totals), "calls_max": max(totals),
            "calls_of_last_run": dict(sorted(runs[-1]["calls"].items(), key=lambda kv: (-kv[1], kv[0])))}


def table(result: dict) -> tuple[list[str], list[list[object]]]:
    headers = ["no-op step through", "median (ms)", "p90 (ms)", "API calls, median (max)", "calls of the last run"]
    labels = {"mlbatch_batch": "**mlbatch AwsBatchBackend.run**, poll 0.3 s",
              "mlbatch_batch_slow": f"**mlbatch AwsBatchBackend.run**, poll {SLOW_POLL_S} s",
              "provider_batch": "provider BatchOperator (deferrable=False)",
              "mlbatch_ecs": "**mlbatch EcsBackend.run**, poll 0.3 s",
              "mlbatch_ecs_slow": f"**mlbatch EcsBackend.run**, poll {SLOW_POLL_S} s",
              "provider_ecs": "provider EcsRunTaskOperator (deferrable=False)",
              "mlbatch_batch_deferred": f"**mlbatch Batch, deferred** (submit, trigger, resume), poll {SLOW_POLL_S} s",
              "provider_batch_deferred": f"provider BatchOperator (deferrable=True, poll_interval={SLOW_POLL_S})",
              "mlbatch_ecs_deferred": f"**mlbatch ECS, deferred** (submit, trigger, resume), poll {SLOW_POLL_S} s",
              "provider_ecs_deferred": "provider EcsRunTaskOperator (deferrable=True, its 6 s waiter delay)"}
    rows: list[list[object]] = []
    for side in SIDES:
        s = result[side]
        rows.append([labels[side], ms(s["median_s"]), ms(s["p90_s"]), f"{s['calls_median']:g} ({s['calls_max']})",
                     ", ".join(f"{n} {op}" for op, n in s["calls_of_last_run"].items())])
    rows.append(["load average before / after", f"{result['load_before']} / {result['load_after']}", "", "", ""])
    return headers, rows


# -- rounds ------------------------------------------------------------------------------
def _rounds(sides: dict[str, Callable[[int], None]]) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    for round_ in range(RUNS + 1):
        for side in SIDES:
            with counted_calls() as calls:
                began = time.perf_counter()
                sides[side](round_)
                elapsed = time.perf_counter() - began
            if round_:  # the first round is untimed: first hook, first client of each side
                runs[side].append({"s": elapsed, "calls": dict(calls)})
    return runs


@contextmanager
def counted_calls() -> Iterator[Counter]:
    """Every AWS API operation any botocore client of this process calls meanwhile (before its retries), the
    triggers' async (aiobotocore) clients too."""
    from aiobotocore.client import AioBaseClient
    from botocore.client import BaseClient

    calls: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def counted(self: Any, operation_name: str, api_params: dict) -> Any:
        calls[operation_name] += 1
        return original(self, operation_name, api_params)

    async def counted_async(self: Any, operation_name: str, api_params: dict) -> Any:
        calls[operation_name] += 1
        return await original_async(self, operation_name, api_params)

    original_async = AioBaseClient._make_api_call
    BaseClient._make_api_call = counted  # type: ignore[method-assign]
    AioBaseClient._make_api_call = counted_async  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]
        AioBaseClient._make_api_call = original_async  # type: ignore[method-assign]


def _sides(settings_file: Path) -> dict[str, Callable[[int], None]]:
    from mlbatch.backends.aws_batch.backend import AwsBatchBackend
    from mlbatch.backends.ecs.backend import EcsBackend
    from mlbatch.settings import load_settings
    from tests.integration.aws_stand_in import BUCKET

    settings = load_settings(settings_file)
    slow = timedelta(seconds=SLOW_POLL_S)
    slow_settings = settings.model_copy(update={
        "batch": settings.batch.model_copy(update={"poll_interval": slow}),
        "ecs": settings.ecs.model_copy(update={"poll_interval": slow})})

    def request(side: str, i: int):
        return noop_request(f"s3://{BUCKET}/bench/{side}-{i}")

    def through(backend_type: type, side: str, settings: Any = settings) -> Callable[[int], None]:
        def run_one(i: int) -> None:
            lines: list[str] = []
            # a cache key, as the operator gives every step: mlbatch first looks for a live job to reattach to
            keyed = request(side, i).model_copy(update={"identity": f"{side}-{i}-{time.time_ns()}"})
            result = backend_type(log=lines.append, settings=settings).run(keyed)
            if not result.ok:
                raise RuntimeError(f"no-op step failed through {backend_type.__name__}:\n"
                                   + result.failure_report() + "\n" + "\n".join(lines[-20:]))
        return run_one

    return {"mlbatch_batch": through(AwsBatchBackend, "mlbatch-batch"),
            "mlbatch_batch_slow": through(AwsBatchBackend, "mlbatch-batch-slow", slow_settings),
            "provider_batch": lambda i: provider_batch(settings, request("provider-batch", i)),
            "mlbatch_ecs": through(EcsBackend, "mlbatch-ecs"),
            "mlbatch_ecs_slow": through(EcsBackend, "mlbatch-ecs-slow", slow_settings),
            "mlbatch_batch_deferred": lambda i: deferred(AwsBatchBackend, slow_settings, request("mlbatch-batch-d", i)),
            "provider_batch_deferred": lambda i: provider_batch(settings, request("provider-batch-d", i), deferrable=True),
            "mlbatch_ecs_deferred": lambda i: deferred(EcsBackend, slow_settings, request("mlbatch-ecs-d", i)),
            "provider_ecs_deferred": lambda i: provider_ecs(settings, request("provider-ecs-d", i), deferrable=True),
            "provider_ecs": lambda i: provider_ecs(settings, request("provider-ecs", i))}


class _TaskInstance:
    """What the operators' execute() touches of an Airflow context outside a DAG run: XCom pushes of their links."""

    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any, **_: Any) -> None:
        self.xcom[key] = value


def first_event(trigger: Any) -> dict:
    """What the triggerer does with a deferred task's trigger: run it until its first event (its payload)."""
    import asyncio

    async def run() -> dict:
        async for event in trigger.run():
            return event.payload
        raise RuntimeError(f"{type(trigger).__name__} ended without an event")

    return asyncio.run(run())


def deferred(backend_type: type, settings: Any, request: Any) -> None:
    """A deferrable mlbatch step: submit in the task, wait in the trigger, collect in the resumed task."""
    from mlbatch.backends.protocols import Progress

    lines: list[str] = []
    keyed = request.model_copy(update={"identity": f"{request.name}-{time.time_ns()}"})
    handle = backend_type(log=lines.append, settings=settings).submit(keyed)
    event = first_event(backend_type(log=lines.append, settings=settings).trigger(handle))
    result = backend_type(log=lines.append, settings=settings).finish(handle, Progress(event["state"]))
    if not result.ok:
        raise RuntimeError(f"deferred no-op step failed through {backend_type.__name__}:\n" + result.failure_report())


def _execute(operator: Any) -> None:
    """execute(), and where it defers, the trigger to its event and execute_complete(), as Airflow would."""
    from airflow.sdk.exceptions import TaskDeferred

    context = {"ti": _TaskInstance()}
    try:
        operator.execute(context)
    except TaskDeferred as deferral:
        getattr(operator, deferral.method_name)(context, first_event(deferral.trigger))


def provider_batch(settings: Any, request: Any, deferrable: bool = False) -> None:
    from airflow.providers.amazon.aws.operators.batch import BatchOperator

    from mlbatch.backends.aws_batch.definitions import definition_name
    from mlbatch.backends.aws_batch.submission import submit_job_args

    args = submit_job_args(request, queue=settings.queue("cpu"), job_definition=definition_name(request.image, settings),
                           spot_retries=0, map_uri=None)
    operator = BatchOperator(task_id="noop", job_name=args["jobName"], job_queue=args["jobQueue"],
                             job_definition=args["jobDefinition"], container_overrides=args["containerOverrides"],
                             aws_conn_id=settings.aws.conn_id, region_name=settings.aws.region,
                             deferrable=deferrable, poll_interval=SLOW_POLL_S)
    _execute(operator)


def provider_ecs(settings: Any, request: Any, deferrable: bool = False) -> None:
    from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator

    from mlbatch.backends.ecs.definitions import family
    from mlbatch.backends.ecs.submission import capacity_of, run_task_args

    ecs = settings.ecs
    args = run_task_args(request, 0, cluster=ecs.cluster, task_definition=family(request.image, settings),
                         capacity_provider=ecs.capacity_provider(capacity_of(request, request.capacity)), subnets=ecs.subnets,
                         security_groups=ecs.security_groups, assign_public_ip=ecs.assign_public_ip)
    operator = EcsRunTaskOperator(
        task_id="noop", cluster=args["cluster"], task_definition=args["taskDefinition"], overrides=args["overrides"],
        capacity_provider_strategy=args["capacityProviderStrategy"], network_configuration=args["networkConfiguration"],
        aws_conn_id=settings.aws.conn_id, region=settings.aws.region, deferrable=deferrable, wait_for_completion=True)
    _execute(operator)
