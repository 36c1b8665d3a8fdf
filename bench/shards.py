"""Sharded scoring: predict.batch over the same rows and model with 1 shard vs 2 shards.

Preparation (untimed) builds real inputs in a temporary artifact root: 400,000 rows of
features.synthetic and a 2-fold train.gbdt model averaged by ensemble.average, run
in-process as plain worker functions and committed like the orchestrator commits them.
Then predict.batch runs through LocalBackend, 1 vcpu per shard, into a fresh output
folder each time; the two shard counts alternate so machine drift hits both.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlbatch.backends.slots import LocalSlots

from bench.stats import median
from bench.steps import in_process, through_local_backend

NAME = "Sharded predict.batch"
MEASURES = (
    "Wall time of LocalBackend.run of predict.batch scoring 400,000 rows with a 2-fold GBDT ensemble, "
    "1 shard vs 2 shards (1 vcpu each, median of 3); every shard is a fresh worker process that loads "
    "the model and the features itself, so the fixed start-up share limits the speed-up. The last row is "
    "the host's own ceiling: the same CPU-bound Python loop in 1 process vs in 2 processes at once."
)
ROWS = 400_000
SHARD_COUNTS = (1, 2)
REPETITIONS = 3
TRAIN_PARAMS = {"max_iter": 100}
SPIN = "n = 0\nfor i in range(20_000_000):\n    n += i\n"  # about a second of one core, no I/O


def run() -> dict:
    with tempfile.TemporaryDirectory(prefix="mlbatch-bench-shards-") as tmp:
        root = Path(tmp)
        began = time.perf_counter()
        inputs = prepare(root)
        prepare_s = time.perf_counter() - began

        runs: dict[int, list[dict]] = {n: [] for n in SHARD_COUNTS}
        for repetition in range(REPETITIONS):
            for n in SHARD_COUNTS:
                output = str(root / f"score-{n}-shards-{repetition}")
                runs[n].append(_score(inputs, output, n))

    by_shards = {
        str(n): {
            "wall_median_s": median([r["wall_s"] for r in rs]),
            "slowest_worker_median_s": median([r["slowest_worker_s"] for r in rs]),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in rs),
            "wall_s": [r["wall_s"] for r in rs],
        }
        for n, rs in runs.items()
    }
    one, two = by_shards["1"]["wall_median_s"], by_shards["2"]["wall_median_s"]
    alone = median([_spin(1) for _ in range(REPETITIONS)])
    together = median([_spin(2) for _ in range(REPETITIONS)])
    return {
        "rows": ROWS,
        "local_vcpu_capacity": LocalSlots().capacity,  # below 2, the two shards would run one after the other
        "train_params": TRAIN_PARAMS,
        "repetitions": REPETITIONS,
        "prepare_s": prepare_s,
        "shards": by_shards,
        "speedup_2_vs_1": one / two,
        "host_ceiling": {"one_process_s": alone, "two_processes_s": together, "speedup": 2 * alone / together},
    }


def table(result: dict) -> tuple[list[str], list[list[object]]]:
    headers = ["shards", "wall, median (s)", "slowest worker's own time, median (s)",
               "peak RSS of one shard (MiB)", "speed-up vs 1 shard"]
    base = result["shards"]["1"]["wall_median_s"]
    rows = [
        [n, round(s["wall_median_s"], 2), round(s["slowest_worker_median_s"], 2), round(s["peak_rss_mib"]),
         f"{base / s['wall_median_s']:.2f}x"]
        for n, s in result["shards"].items()
    ]
    ceiling = result["host_ceiling"]
    rows.append([
        "host ceiling: 2 CPU-bound processes", "-", "-", "-",
        f"{ceiling['speedup']:.2f}x ({ceiling['one_process_s']:.2f} s alone, "
        f"{ceiling['two_processes_s']:.2f} s for two at once)",
    ])
    return headers, rows


def prepare(root: Path) -> dict[str, str]:
    """features -> train (2 folds) -> ensemble under `root`; the step URIs predict.batch reads."""
    features = in_process(root / "features", "features.synthetic", {"rows": ROWS, "seed": 7}, {})
    trained = in_process(root / "train", "train.gbdt", TRAIN_PARAMS, {"features": features}, shards=2)
    model = in_process(root / "ensemble", "ensemble.average", {}, {"train": trained})
    return {"ensemble": model, "features": features}


def _spin(processes: int) -> float:
    """Wall time of `processes` copies of the same CPU-bound loop started together."""
    began = time.perf_counter()
    running = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(processes)]
    if [p.wait() for p in running] != [0] * processes:
        raise RuntimeError("the CPU-bound reference loop failed")
    return time.perf_counter() - began


def _score(inputs: dict[str, str], output: str, shards: int) -> dict:
    step = through_local_backend("predict.batch", {}, inputs, output, shards, memory_mib=4096)
    rows = step.manifest["counts"].get("rows")
    if rows != ROWS:  # every row scored exactly once, or the timing means nothing
        raise RuntimeError(f"predict.batch with {shards} shard(s) scored {rows} rows")
    return {
        "wall_s": step.wall_s,
        "slowest_worker_s": max(s["duration_s"] for s in step.manifest["shards"]),
        "peak_rss_mib": max(o.peak_rss_mib for o in step.result.outcomes),
    }
