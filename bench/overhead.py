"""Local step overhead: a no-op worker through LocalBackend vs the same command run alone.

Both sides run the identical argv with the identical environment (thread caps, shard
identity), so the difference is what the backend adds: vcpu slot admission, the memory
watchdog, its poll loop (poll_interval_s) and the threads that pump the worker's output
into the log. Runs alternate between the two sides so drift in the machine hits both.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

from mlbatch.backends.local import LocalBackend, worker_argv, worker_env
from mlbatch.backends.jobs import JobRequest

from bench.stats import median, ms, p90
from workers.wire import run_command

NAME = "Local step overhead"
MEASURES = (
    "Wall time of a no-op step (worker check.noop): LocalBackend.run(JobRequest) vs the same worker "
    "command via subprocess.run (10 runs each, alternating, after one untimed run of each); the "
    "difference is the backend's own cost: slot admission, memory watchdog and poll loop, log pumping. "
    "The backend notices a finished worker on its next poll tick, so up to one poll interval of it is waiting."
)
RUNS = 10


def run() -> dict:
    backend_s: list[float] = []
    plain_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="mlbatch-bench-noop-") as tmp:
        outputs = (str(Path(tmp) / f"noop-{i}") for i in range(2 * RUNS + 2))
        _through_backend(next(outputs))  # untimed: first start of each side
        _alone(next(outputs))
        for _ in range(RUNS):
            backend_s.append(_through_backend(next(outputs)))
            plain_s.append(_alone(next(outputs)))
    result = {
        "runs": RUNS,
        "poll_interval_s": LocalBackend().poll_interval_s,
        "backend_median_s": median(backend_s),
        "backend_p90_s": p90(backend_s),
        "subprocess_median_s": median(plain_s),
        "subprocess_p90_s": p90(plain_s),
        "backend_s": backend_s,
        "subprocess_s": plain_s,
    }
    result["overhead_median_s"] = result["backend_median_s"] - result["subprocess_median_s"]
    result["overhead_p90_s"] = result["backend_p90_s"] - result["subprocess_p90_s"]
    return result


def table(result: dict) -> tuple[list[str], list[list[object]]]:
    headers = ["how the no-op worker ran", "median (ms)", "p90 (ms)"]
    rows = [
        [f"LocalBackend.run (poll every {result['poll_interval_s']:g} s)",
         ms(result["backend_median_s"]), ms(result["backend_p90_s"])],
        ["subprocess.run, same argv and env", ms(result["subprocess_median_s"]), ms(result["subprocess_p90_s"])],
        ["**backend overhead** (backend − subprocess)", ms(result["overhead_median_s"]), ms(result["overhead_p90_s"])],
    ]
    return headers, rows


def noop_request(output: str) -> JobRequest:
    step = {"worker": "check.noop", "params": {}, "inputs": {}, "output": output}
    return JobRequest(
        name="bench.noop",
        image="mlbatch-worker:cpu",
        command=run_command(step),
        vcpu=1,
        memory_mib=512,
    )


def _through_backend(output: str) -> float:
    lines: list[str] = []
    request = noop_request(output)
    began = time.perf_counter()
    result = LocalBackend(log=lines.append).run(request)
    elapsed = time.perf_counter() - began
    if not result.ok:
        raise RuntimeError("no-op step failed through LocalBackend:\n" + result.failure_report())
    return elapsed


def _alone(output: str) -> float:
    request = noop_request(output)
    argv, env = worker_argv(request), worker_env(request, 0)
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"no-op worker failed alone (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed
