"""Many steps waiting on AWS Batch in one triggerer: mlbatch's trigger vs the Amazon provider's.

Side by side in one run, for 100 and 1,000 waiting single-job steps: mlbatch's
BatchStepTrigger (steps in one triggerer share their DescribeJobs calls) and the provider's
BatchJobTrigger (what `BatchOperator(deferrable=True)` defers to), each at its default poll
interval (mlbatch's [batch] poll_interval 15 s; BatchOperator's poll_interval 30 s).

How: moto_server runs in this process with N jobs submitted and held RUNNABLE. A child
process does what Airflow's triggerer does with them: one asyncio loop running every trigger
until it fires. This process counts the DescribeJobs calls moto answers while the jobs wait,
then ends the jobs one by one, spread evenly over 30 s (so their ends fall at every phase of
the poll intervals, as real jobs' do); the child records when each trigger fired. The triggers'
CPU and memory are the child's own (moto's work stays in this process). What this leaves
out: the scheduler and the task processes before the deferral and after the event, which
are the same for both sides.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.stats import median, p95

NAME = "Waiting steps: shared polling vs the Amazon provider's trigger"
SIZES = (100, 1000)
HOLD_S = 75.0
SPREAD_S = 30.0
SIDES = ("mlbatch", "provider")
MEASURES = (
    "N single-job steps waiting on AWS Batch in one triggerer-like process (one asyncio loop running "
    "every trigger), against moto_server on 127.0.0.1 with the jobs held RUNNABLE for {hold_s:.0f} s. "
    "mlbatch: BatchStepTrigger at poll_interval 15 s (the default), "
    "whose steps share DescribeJobs calls (up to 100 jobs a call); provider: BatchJobTrigger as "
    "BatchOperator(deferrable=True) defers, waiter_delay 30 s (its default). The jobs then end one by one, "
    "spread evenly over 30 s. DescribeJobs calls are "
    "counted by the server while the jobs wait; memory is the growth of the child's RSS from "
    "before the triggers started to when all were waiting, per step; CPU is the child's CPU time "
    "while waiting, per step per minute; detection is the time from a job's end to its trigger's "
    "event (median and p95); done is the time from the last job's end to the last event."
).format(hold_s=HOLD_S)


def run() -> dict:
    results: dict[str, Any] = {}
    for size in SIZES:
        for side in SIDES:
            print(f"   {side}, {size} waiting steps ...", file=sys.stderr, flush=True)
            results[f"{side}/{size}"] = _measure(side, size)
    return {"hold_s": HOLD_S, "runs": results}


def table(result: dict) -> tuple[list[str], list[list[object]]]:
    headers = ["side", "waiting steps", "DescribeJobs calls / min", "triggerer memory / step (KiB)",
               "triggerer CPU / step / min (ms)", "detection median (s)", "detection p95 (s)",
               "jobs' end to all events (s)"]
    rows = []
    for key, run_ in result["runs"].items():
        side, size = key.split("/")
        rows.append([side, size, f"{run_['describe_per_min']:.0f}", f"{run_['rss_kib_per_step']:.1f}",
                     f"{run_['cpu_ms_per_step_min']:.2f}", f"{run_['detect_median_s']:.1f}",
                     f"{run_['detect_p95_s']:.1f}", f"{run_['all_done_s']:.1f}"])
    return headers, rows


# -- the server side (this process) --------------------------------------------------------------
def _measure(side: str, size: int) -> dict[str, Any]:
    with _HeldBatch() as batch:
        job_ids = batch.submit(size)
        with tempfile.TemporaryDirectory(prefix="mlbatch-bench-waiting-") as folder:
            out = Path(folder) / "child.json"
            child = subprocess.Popen([sys.executable, "-m", "bench.waiting", side, json.dumps(job_ids), str(out)],
                                     env={**os.environ, **batch.env}, cwd=Path(__file__).resolve().parents[1])
            time.sleep(5.0)  # the triggers start and take their first look after one interval
            before = batch.describe_calls
            time.sleep(HOLD_S)
            calls = batch.describe_calls - before
            ended_at = batch.end_spread(job_ids, over_s=SPREAD_S)
            child.wait(timeout=300)
            report = json.loads(out.read_text())
    latencies = sorted(fired - ended_at[job_id] for job_id, fired in report["fired_at"].items())
    return {
        "describe_per_min": calls / (HOLD_S / 60.0),
        "rss_kib_per_step": (report["rss_waiting_kib"] - report["rss_before_kib"]) / size,
        "cpu_ms_per_step_min": 1000.0 * report["cpu_waiting_s"] / size / (report["waiting_s"] / 60.0),
        "detect_median_s": median(latencies),
        "detect_p95_s": p95(latencies),
        "all_done_s": max(report["fired_at"].values()) - max(ended_at.values()),
        "events": len(latencies),
    }


class _HeldBatch:
    """moto_server in this process whose Batch jobs stay RUNNABLE until `end_all()`."""

    def __enter__(self) -> _HeldBatch:
        from moto.batch.models import batch_backends
        from moto.batch.responses import BatchResponse
        from moto.batch_simple.models import BatchSimpleBackend
        from moto.server import ThreadedMotoServer

        from mlbatch.cli.postgres import free_port

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
        self._backends = batch_backends
        self.describe_calls = 0
        self._lock = threading.Lock()
        original = BatchResponse.describejobs

        def counted(response: Any) -> Any:
            with self._lock:
                self.describe_calls += 1
            return original(response)

        self._restore = [(BatchResponse, "describejobs", original),
                         (BatchSimpleBackend, "_mark_job_as_finished", BatchSimpleBackend._mark_job_as_finished)]
        BatchResponse.describejobs = counted  # type: ignore[method-assign]
        BatchSimpleBackend._mark_job_as_finished = _held  # type: ignore[method-assign]
        port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        self.endpoint = f"http://127.0.0.1:{port}"
        conn = {"conn_type": "aws", "extra": {"endpoint_url": self.endpoint, "region_name": "us-east-1"}}
        self.env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1", "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn)}
        self._post("/moto-api/reset")
        self._post("/moto-api/config", {"batch": {"use_docker": False}})
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
        for owner, name, original in self._restore:
            setattr(owner, name, original)

    def _post(self, path: str, body: dict | None = None) -> None:
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        urllib.request.urlopen(urllib.request.Request(self.endpoint + path, method="POST", data=data), timeout=10)

    def _client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name="us-east-1", endpoint_url=self.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def submit(self, size: int) -> list[str]:
        iam, batch = self._client("iam"), self._client("batch")
        trust = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "batch.amazonaws.com"}}]})
        role = iam.create_role(RoleName="bench-batch", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        environment = batch.create_compute_environment(
            computeEnvironmentName="bench", type="UNMANAGED", state="ENABLED", serviceRole=role,
        )["computeEnvironmentArn"]
        batch.create_job_queue(jobQueueName="bench", state="ENABLED", priority=1,
                               computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}])
        batch.register_job_definition(jobDefinitionName="bench", type="container", containerProperties={
            "image": "mlbatch-worker:cpu", "command": ["list"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}]})
        return [batch.submit_job(jobName=f"wait-{i}", jobQueue="bench", jobDefinition="bench")["jobId"]
                for i in range(size)]

    def end_spread(self, job_ids: list[str], over_s: float) -> dict[str, float]:
        """End the jobs (as SUCCEEDED) one by one, evenly over `over_s`; when each ended."""
        jobs = {job.job_id: job for backend in self._backends.values() for regional in backend.values()
                for job in regional._jobs.values()}
        start, ended_at = time.time(), {}
        for i, job_id in enumerate(job_ids):
            time.sleep(max(0.0, start + i * over_s / len(job_ids) - time.time()))
            jobs[job_id]._start_attempt()
            jobs[job_id]._mark_stopped(success=True)
            ended_at[job_id] = time.time()
        return ended_at


def _held(backend: Any, include_start_attempt: bool, job: Any) -> None:
    """moto's no-Docker hook, replaced: the job is accepted and left RUNNABLE."""
    backend.backend._jobs[job.job_id] = job
    job.status = "RUNNABLE"


# -- the triggerer side (a child process) ---------------------------------------------------------
def _trigger(side: str, job_id: str) -> Any:
    if side == "mlbatch":
        from mlbatch.backends.aws_batch.trigger import BatchStepTrigger

        return BatchStepTrigger(job_id=job_id, aws_conn_id="aws_default", region_name="us-east-1",
                                poll_interval_s=15.0)
    from airflow.providers.amazon.aws.triggers.batch import BatchJobTrigger

    return BatchJobTrigger(job_id=job_id, region_name="us-east-1", aws_conn_id="aws_default",
                           waiter_delay=30, waiter_max_attempts=1000)


async def _drain(job_id: str, trigger: Any, fired_at: dict[str, float]) -> None:
    async for _event in trigger.run():
        fired_at[job_id] = time.time()
        return


def _rss_kib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1024


def child(side: str, job_ids: list[str], out: Path) -> None:
    logging.disable(logging.INFO)  # a credentials line per client otherwise
    triggers = {job_id: _trigger(side, job_id) for job_id in job_ids}
    fired_at: dict[str, float] = {}

    async def main() -> dict[str, float]:
        rss_before = _rss_kib()
        tasks = [asyncio.create_task(_drain(job_id, t, fired_at)) for job_id, t in triggers.items()]
        await asyncio.sleep(40.0)  # past every trigger's first look (15 s and 30 s intervals)
        cpu_start, wall_start, rss_waiting = time.process_time(), time.monotonic(), _rss_kib()
        while not fired_at:
            await asyncio.sleep(0.2)
        cpu_waiting, waiting_s = time.process_time() - cpu_start, time.monotonic() - wall_start
        await asyncio.gather(*tasks)
        return {"rss_before_kib": rss_before, "rss_waiting_kib": rss_waiting, "cpu_waiting_s": cpu_waiting,
                "waiting_s": waiting_s}

    report = asyncio.run(main())
    out.write_text(json.dumps({**report, "fired_at": fired_at}))


if __name__ == "__main__":
    child(sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3]))
