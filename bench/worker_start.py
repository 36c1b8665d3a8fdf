"""Worker start: a no-op shard's `python -m workers run` against a bare interpreter, same run.

A batch of many small shards pays each shard's start once per shard. Both sides are fresh
interpreters of this virtualenv, alternating so drift hits both; `-X importtime` then says what
the worker start imports and what each costs.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.stats import median, ms, p90

NAME = "Worker start"
MEASURES = (
    "Wall time of a fresh `python -m workers run` of one no-op shard (check.noop, a local output) and of "
    "a bare `python -c pass`, same interpreter and environment, 20 runs each alternating after one untimed "
    "run of each; the goal is at most 100 ms or at most 3x the bare interpreter. The heaviest imports "
    "of one start, from `-X importtime` (cumulative, ms)."
)
RUNS = 20
SHOWN_IMPORTS = 6


def run() -> dict:
    start_s: list[float] = []
    bare_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="mlbatch-bench-start-") as tmp:
        outputs = (str(Path(tmp) / f"noop-{i}") for i in range(RUNS + 2))
        _timed(_noop_argv(next(outputs)))  # untimed: first start of each side
        _timed([sys.executable, "-c", "pass"])
        for _ in range(RUNS):
            start_s.append(_timed(_noop_argv(next(outputs))))
            bare_s.append(_timed([sys.executable, "-c", "pass"]))
        imports = _heaviest_imports(_noop_argv(next(outputs)))
    result = {
        "runs": RUNS,
        "start_median_s": median(start_s), "start_p90_s": p90(start_s),
        "bare_median_s": median(bare_s), "bare_p90_s": p90(bare_s),
        "start_s": start_s, "bare_s": bare_s, "imports_ms": imports,
    }
    result["ratio_median"] = result["start_median_s"] / result["bare_median_s"]
    return result


def table(result: dict) -> tuple[list[str], list[list[object]]]:
    headers = ["what started", "median (ms)", "p90 (ms)"]
    rows: list[list[object]] = [
        ["`python -m workers run`, check.noop shard", ms(result["start_median_s"]), ms(result["start_p90_s"])],
        ["bare `python -c pass` (floor)", ms(result["bare_median_s"]), ms(result["bare_p90_s"])],
        ["worker start / bare interpreter (median)", f"{result['ratio_median']:.2f}x", ""],
    ]
    rows += [[f"import `{name}` (cumulative, one start)", value, ""] for name, value in result["imports_ms"]]
    return headers, rows


def _noop_argv(output: str) -> list[str]:
    request = json.dumps({"worker": "check.noop", "params": {}, "inputs": {}, "output": output})
    return [sys.executable, "-m", "workers", "run", "--request", request]


def _timed(argv: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - began


def _heaviest_imports(argv: list[str]) -> list[tuple[str, float]]:
    """The top-level imports of one start by cumulative time (`-X importtime` lines on stderr)."""
    err = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], check=True, capture_output=True, text=True).stderr
    top = []
    for line in err.splitlines():
        if not line.startswith("import time:"):
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        if cumulative.strip().isdigit() and name[1:2] != " ":  # not the header, not a nested import
            top.append((name.strip(), round(int(cumulative) / 1000, 1)))
    return sorted(top, key=lambda item: -item[1])[:SHOWN_IMPORTS]
