"""AWS Batch backend: no-op step overhead, SubmitJob size for 10,000 shards, collect() of 10,000 children.

Everything runs against the local AWS stand-in of the integration tests
(tests/integration/aws_stand_in.py): moto_server on 127.0.0.1 in this process, whose
Batch jobs run as containers of the worker image built from this checkout (a Docker engine
is needed). So the overhead measured is mlbatch's, the Batch API round trips' and a local
container start's, not real Batch scheduling (a real queue adds its own seconds to minutes
of placement and image pull). Three parts:

1. A no-op step (worker check.noop writing to the stand-in's S3) through
   AwsBatchBackend.run vs the identical request through LocalBackend.run, alternating.
2. SubmitJob for a 10,000-shard step: its payload size for every shard and for retries of
   scattered shards (against Batch's 30 KiB SubmitJob payload quota), then one real submit
   to the stand-in with its runner held, counting the API calls; the array is terminated
   before anything runs.
3. AwsBatchBackend.collect() of a finished 10,000-child array from a fake BatchJobs
   (no AWS at all): the time to build the 10,000 outcomes and what it writes to the task log.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from bench.stats import median, ms, p90
from workers import wire
from workers.wire import run_command

NAME = "AWS Batch backend"
MEASURES = (
    "Against the local AWS stand-in (moto_server in-process, Batch jobs run as containers of the worker image "
    "on this machine; no real Batch queue, placement or image pull). Top rows: wall time of a no-op step (worker check.noop "
    "writing its output to the stand-in's S3): AwsBatchBackend.run(JobRequest) (a new backend each run, "
    "as in a task: Airflow connection, fresh boto3 clients, DescribeJobDefinitions, SubmitJob, DescribeJobs "
    "every poll interval of 0.3 s, so up to 0.3 s of it is waiting for the next poll; then the job's log "
    "lines) vs the same request via LocalBackend.run ({runs} runs each, alternating, after one untimed run "
    "of each); the second row is the part of the first before any API call, mostly botocore parsing its "
    "endpoint and service JSON for each new session (and the garbage collections that triggers). "
    "Middle rows: a 10,000-shard step is one SubmitJob call (an array job); its payload size "
    "(json.dumps of the call's arguments) against Batch's 30 KiB SubmitJob payload quota, for every shard "
    "and for retries of scattered shards (which travel in MLBATCH_SHARD_MAP as ranges), and the API calls "
    "of a real AwsBatchBackend.submit of it to the stand-in. Bottom rows: AwsBatchBackend.collect() of a "
    "finished 10,000-child array from a fake BatchJobs (no AWS; median of {collect_runs}), and what it "
    "logs, with 37 children failed (exit 1, 30 log lines each) and with every child failed."
)
RUNS = 5
COLLECT_RUNS = 5
SHARDS = 10_000
FAILED_FEW = 37
PAYLOAD_LIMIT = 30 * 1024  # Batch service quota: maximum job payload size for SubmitJob
LOG_LINES_PER_CHILD = 30
KEY = "3f" * 32  # a cache key as the operator sets it (sha256 hex)
RETRY_SETS = {
    "every shard (no MLBATCH_SHARD_MAP)": None,
    "retry of every other shard (1,3,5,...: 5,000 shards)": list(range(1, SHARDS, 2)),
    "retry of 2 of every 3 shards (1-2,4-5,...: 6,666 shards)": [i for i in range(SHARDS) if i % 3],
}
MEASURES = MEASURES.format(runs=RUNS, collect_runs=COLLECT_RUNS)


def run() -> dict:
    from tests.containers import images
    from tests.integration.aws_stand_in import AwsStandIn

    client = images.connect()
    if client is None:
        raise RuntimeError(f"no Docker engine: {images.ENABLE_HINT}")
    _, worker = images.ensure_images(client)
    result: dict[str, Any] = {"payload": payload_sizes(), "collect": collect_times()}
    began = time.perf_counter()
    with on_stand_in(AwsStandIn(client, worker)) as (stand_in, settings_file):
        result["stand_in_start_s"] = time.perf_counter() - began
        result["noop"] = noop_overhead(settings_file)
        result["submit"] = real_submit(stand_in, settings_file)
    return result


@contextmanager
def on_stand_in(stand_in: Any, quiet: tuple[str, ...] = ()) -> Iterator[tuple[Any, Path]]:
    """The stand-in started, the project's definitions deployed on it, this process's environment and settings
    pointing at it; (stand-in, settings file). `quiet`: loggers held at WARNING meanwhile."""
    saved = dict(os.environ)
    # botocore's "Found credentials in environment variables" per client, and the callers' own chatty ones
    chatty = [logging.getLogger(name) for name in ("botocore.credentials", *quiet)]
    levels = [logger.level for logger in chatty]
    for logger in chatty:
        logger.setLevel(logging.WARNING)
    try:
        stand_in.start()
        with tempfile.TemporaryDirectory(prefix="mlbatch-bench-aws-") as tmp:
            settings_file = Path(tmp) / "mlbatch.toml"
            settings_file.write_text(stand_in.settings_text())
            # before any hook exists: the Airflow connection and the artifact root point at the stand-in
            os.environ.update({**stand_in.airflow_env(), "MLBATCH_SETTINGS": str(settings_file)})
            _deploy()
            yield stand_in, settings_file
    finally:
        stand_in.stop()
        os.environ.clear()
        os.environ.update(saved)
        for logger, level in zip(chatty, levels):
            logger.setLevel(level)


def table(result: dict) -> tuple[list[str], list[list[object]]]:
    headers = ["what", "median", "p90 / detail"]
    noop = result["noop"]
    rows: list[list[object]] = [
        [f"no-op step via AwsBatchBackend.run (poll every {noop['poll_interval_s']:g} s)",
         f"{ms(noop['batch_median_s'])} ms", f"{ms(noop['batch_p90_s'])} ms"],
        ["of which: new backend until its first API call (Airflow connection, Batch and Logs boto3 clients)",
         f"{ms(noop['setup_median_s'])} ms", f"{ms(noop['setup_p90_s'])} ms"],
        ["API calls per no-op step via Batch (median; the last run's)", noop["calls_median"],
         ", ".join(f"{n} {op}" for op, n in noop["calls_of_last_run"].items())],
        ["same request via LocalBackend.run", f"{ms(noop['local_median_s'])} ms", f"{ms(noop['local_p90_s'])} ms"],
        ["**Batch backend overhead** (Batch − local)", f"{ms(noop['overhead_median_s'])} ms",
         f"{ms(noop['overhead_p90_s'])} ms"],
    ]
    for label, size in result["payload"]["sizes"].items():
        verdict = "over" if size["args_bytes"] > PAYLOAD_LIMIT else "under"
        rows.append([f"SubmitJob payload, 10,000-shard step: {label}", f"{size['args_bytes']:,} bytes",
                     f"{100 * size['args_bytes'] / PAYLOAD_LIMIT:.0f}% of 30 KiB ({verdict}); "
                     f"shard map {size['shard_map_chars']:,} chars"
                     + (" (in a file on S3: MLBATCH_SHARD_MAP_URI)" if size.get("shard_map_in_file") else "")])
    submit = result["submit"]
    if submit.get("skipped"):
        rows.append(["real submit of the 10,000-shard array to the stand-in", "-", submit["skipped"]])
    else:
        rows.append(["real AwsBatchBackend.submit of the 10,000-shard array to the stand-in",
                     f"{submit['api_calls']} API calls",
                     ", ".join(f"{n} {op}" for op, n in submit["calls"].items())
                     + f"; {submit['submit_s']:.1f} s (moto creating 10,000 children)"])
    for label, c in result["collect"].items():
        rows.append([f"collect() of 10,000 children, {label}", f"{ms(c['median_s'])} ms",
                     f"p90 {ms(c['p90_s'])} ms; logs {c['log_calls']:,} messages = {c['log_lines']:,} lines "
                     f"({c['log_kib']:,.0f} KiB); {c['log_fetches']} log fetches"])
    return headers, rows


# -- 1. no-op step: Batch vs local ------------------------------------------------
def noop_overhead(settings_file: Path) -> dict:
    from mlbatch.backends.aws_batch.backend import AwsBatchBackend
    from mlbatch.backends.local import LocalBackend
    from mlbatch.settings import load_settings
    from tests.integration.aws_stand_in import BUCKET

    settings = load_settings(settings_file)
    outputs = (f"s3://{BUCKET}/bench/noop-{i}" for i in range(2 * RUNS + 2))

    def through_batch(output: str) -> dict:
        lines: list[str] = []
        calls: Counter[str] = Counter()
        first_call: list[float] = []
        began = time.perf_counter()
        backend = AwsBatchBackend(log=lines.append, settings=settings)
        _count_calls(backend.jobs.client, calls, first_call)
        # the Logs client is made here rather than in collect(), so its calls are counted too: same total
        _count_calls(backend.jobs._logs(settings.aws.region).conn, calls, first_call)
        result = backend.run(noop_request(output))
        elapsed = time.perf_counter() - began
        if not result.ok:
            raise RuntimeError("no-op step failed through AwsBatchBackend:\n" + result.failure_report()
                               + "\n" + "\n".join(lines[-20:]))
        return {"s": elapsed, "setup_s": first_call[0] - began, "calls": dict(calls)}

    def through_local(output: str) -> float:
        lines: list[str] = []
        began = time.perf_counter()
        result = LocalBackend(log=lines.append).run(noop_request(output))
        elapsed = time.perf_counter() - began
        if not result.ok:
            raise RuntimeError("no-op step failed through LocalBackend:\n" + result.failure_report())
        return elapsed

    through_batch(next(outputs))  # untimed: first hook, first client, first process of each side
    through_local(next(outputs))
    batch: list[dict] = []
    local: list[float] = []
    for _ in range(RUNS):
        batch.append(through_batch(next(outputs)))
        local.append(through_local(next(outputs)))
    batch_s = [b["s"] for b in batch]
    setup_s = [b["setup_s"] for b in batch]
    result = {
        "runs": RUNS,
        "poll_interval_s": settings.batch.poll_interval.total_seconds(),
        "batch_median_s": median(batch_s),
        "batch_p90_s": p90(batch_s),
        "setup_median_s": median(setup_s),
        "setup_p90_s": p90(setup_s),
        "local_median_s": median(local),
        "local_p90_s": p90(local),
        "calls_median": median([sum(b["calls"].values()) for b in batch]),
        "calls_of_last_run": dict(sorted(batch[-1]["calls"].items(), key=lambda kv: -kv[1])),
        "batch_s": batch_s,
        "setup_s": setup_s,
        "local_s": local,
        "calls": [b["calls"] for b in batch],
    }
    result["overhead_median_s"] = result["batch_median_s"] - result["local_median_s"]
    result["overhead_p90_s"] = result["batch_p90_s"] - result["local_p90_s"]
    return result


def noop_request(output: str):
    from mlbatch.backends.jobs import JobRequest

    step = {"worker": "check.noop", "params": {}, "inputs": {}, "output": output}
    return JobRequest(
        name="bench.noop",
        image="mlbatch-worker:cpu",
        command=run_command(step),
        env={"MLBATCH_ARTIFACTS": os.environ["MLBATCH_ARTIFACTS"]},
        vcpu=1,
        memory_mib=512,
    )


# -- 2. SubmitJob for 10,000 shards -------------------------------------------------
def wide_request(shard_indices: list[int] | None):
    """A 10,000-shard step try as the operator builds it: inputs, env, cache key, tags, deadlines."""
    from mlbatch.backends.jobs import JobRequest

    bucket = "s3://mlbatch-artifacts/artifacts"
    step = {"worker": "predict.batch", "params": {},
            "inputs": {"ensemble": f"{bucket}/steps/ensemble/{KEY}", "features": f"{bucket}/steps/features/{KEY}"},
            "output": f"{bucket}/steps/score/{KEY}", "shard_index": 0, "shard_count": SHARDS}
    return JobRequest(
        name="churn_scoring.score",
        image="mlbatch-worker:cpu",
        command=run_command(step),
        env={"MLBATCH_TRY_NUMBER": "2" if shard_indices else "1", "MLBATCH_ARTIFACTS": bucket},
        vcpu=1,
        memory_mib=2048,
        shard_count=SHARDS,
        shard_indices=shard_indices,
        timeout_s=3600,
        start_timeout_s=1800,
        identity=KEY,
        tags={"dag": "churn_scoring", "step": "score", "run": "scheduled__2026-11-23T00:00:00+00:00",
              "try": "2" if shard_indices else "1", "key": KEY, "owner": "ml-platform"},
    )


def payload_sizes() -> dict:
    from mlbatch.backends.aws_batch.submission import MAX_INLINE_SHARD_MAP, shard_map, submit_job_args

    sizes = {}
    for label, indices in RETRY_SETS.items():
        request = wide_request(indices)
        text = shard_map(request) or ""
        # what AwsBatchBackend.submit does: a list past MAX_INLINE_SHARD_MAP travels as a file on S3
        map_uri = "s3://mlbatch-artifacts/_shard_maps/n-0123456789abcdef.txt" if len(text) > MAX_INLINE_SHARD_MAP else None
        args = submit_job_args(request, queue="mlbatch-cpu", job_definition="mlbatch-cpu", spot_retries=3,
                               map_uri=map_uri)
        env = {item["name"]: item["value"] for item in args["containerOverrides"]["environment"]}
        sizes[label] = {
            "shards": len(indices) if indices is not None else SHARDS,
            "array_size": args.get("arrayProperties", {}).get("size"),
            "args_bytes": len(json.dumps(args).encode()),
            "container_overrides_bytes": len(json.dumps(args["containerOverrides"]).encode()),
            "shard_map_chars": len(text),
            "shard_map_in_file": wire.SHARD_MAP_URI in env,
        }
    return {"limit_bytes": PAYLOAD_LIMIT, "submit_job_calls": 1, "sizes": sizes}


def real_submit(stand_in: Any, settings_file: Path) -> dict:
    """AwsBatchBackend.submit of every 10,000 shards with the runner held; terminated before anything runs."""
    from moto.batch.models import batch_backends

    from mlbatch.backends.aws_batch.backend import AwsBatchBackend
    from mlbatch.settings import load_settings

    calls: Counter[str] = Counter()
    backend = AwsBatchBackend(log=lambda line: None, settings=load_settings(settings_file))
    _count_calls(backend.jobs.client, calls, [])
    # a harmless command: should a child ever get to run, it only lists the workers
    request = wide_request(None).model_copy(update={"command": ["list"]})
    stand_in.runner.hold()
    try:
        began = time.perf_counter()
        handle = backend.submit(request)
        submit_s = time.perf_counter() - began
        stand_in.client("batch").terminate_job(jobId=handle.job_id, reason="bench")
        # release only once every child is marked stopped, or the stand-in would run them all
        moto = batch_backends["123456789012"]["us-east-1"]
        parent = moto._jobs[handle.job_id]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            children = parent._child_jobs or []
            if len(children) == SHARDS and all(child.stop for child in children):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("the stand-in did not terminate the 10,000 children within 60 s")
    finally:
        stand_in.runner.release()
    return {"submit_s": submit_s, "api_calls": sum(calls.values()),
            "calls": dict(sorted(calls.items(), key=lambda kv: -kv[1])),
            "children_created": len(parent._child_jobs or []), "started": len(stand_in.runner.started)}


# -- 3. collect() of 10,000 children ------------------------------------------------
class FakeJobs:
    """Duck-typed BatchJobs for collect(): a finished array of SHARDS children, `failed` of them FAILED."""

    def __init__(self, failed: set[int]) -> None:
        started = 1_700_000_000_000
        self.children = [
            {"jobId": f"j:{i}", "jobArn": f"arn:aws:batch:us-east-1:123456789012:job/j:{i}",
             "jobName": "n", "createdAt": started - 5_000,
             "status": "FAILED" if i in failed else "SUCCEEDED",
             "statusReason": "Essential container in task exited",
             "container": {"exitCode": 1 if i in failed else 0},
             "startedAt": started + i, "stoppedAt": started + i + 42_000,
             "arrayProperties": {"index": i}}
            for i in range(SHARDS)
        ]
        self.lines = [f"2026-11-23 13:00:{n:02d} INFO worker: line {n} of a shard's output" for n in range(29)]
        self.lines.append("RuntimeError: simulated failure of this shard")
        self.log_fetches = 0

    def finished_children(self, job_id: str) -> list[dict]:
        return list(self.children)

    def log_lines(self, job_id: str) -> list[str]:
        self.log_fetches += 1
        return list(self.lines)

    def describe(self, job_id: str) -> dict:
        return {"jobId": job_id, "status": "FAILED", "arrayProperties": {"size": SHARDS}}


def collect_times() -> dict:
    from mlbatch.backends.aws_batch.backend import AwsBatchBackend, BatchHandle
    from mlbatch.settings import Settings

    handle = BatchHandle(job_id="j", job_name="n", queue="q", name="d.s", indices=list(range(SHARDS)),
                         shard_count=SHARDS, memory_mib=2048, vcpu=1, gpu=0, spot=False, submitted_at=0.0)
    scenarios = {f"{FAILED_FEW} failed": set(range(0, SHARDS, SHARDS // FAILED_FEW)[:FAILED_FEW]),
                 "all 10,000 failed": set(range(SHARDS))}
    results = {}
    for label, failed in scenarios.items():
        times: list[float] = []
        for _ in range(COLLECT_RUNS + 1):  # the first, untimed, warms imports and caches
            jobs = FakeJobs(failed)
            logged: list[str] = []
            backend = AwsBatchBackend(log=logged.append, settings=Settings(), jobs=jobs)  # type: ignore[arg-type]
            began = time.perf_counter()
            result = backend.collect(handle)
            times.append(time.perf_counter() - began)
        if len(result.failures) != len(failed) or len(result.outcomes) != SHARDS:
            raise RuntimeError(f"collect() gave {len(result.failures)} failures of {len(result.outcomes)} outcomes")
        timed = times[1:]
        results[label] = {
            "failed": len(failed),
            "median_s": median(timed),
            "p90_s": p90(timed),
            "log_calls": len(logged),
            "log_lines": sum(message.count("\n") + 1 for message in logged),
            "log_kib": sum(len(message.encode()) + 1 for message in logged) / 1024,
            "log_fetches": jobs.log_fetches,
            "times_s": timed,
        }
    return results


# -- plumbing ---------------------------------------------------------------------
def _deploy() -> None:
    from mlbatch.cli.deploy import deploy

    said: list[str] = []
    root = Path(__file__).resolve().parents[1]
    if deploy(root / "dags" / "specs", None, dry_run=False, out=said.append) != 0:
        raise RuntimeError("registering the job definitions on the stand-in failed:\n" + "\n".join(said))


def _count_calls(client: Any, calls: Counter[str], first_call: list[float]) -> None:
    """Count every API operation the client calls (before botocore's own retries)."""
    def counted(event_name: str, **_: Any) -> None:
        if not first_call:
            first_call.append(time.perf_counter())
        calls[event_name.rsplit(".", 1)[-1]] += 1

    client.meta.events.register("before-call.*.*", counted)
