"""Model steps per fold: train.gbdt and train.mlp, 5 folds, with 1 vs 2 shards running at once.

Preparation (untimed): features.synthetic with the churn_training rows (200,000), committed in a
temporary artifact root. Then each model step runs through LocalBackend exactly as a batch runs
it (5 shards, 1 vcpu each: one CPU thread per worker), with the params of the example
churn_training spec, twice: local capacity 1 (one shard at a time) and capacity 2 (two at once).
Per-fold time is the worker's own duration from its shard manifest (read table, split, fit,
predict its out-of-fold rows, write), without the process start and imports; the step's wall is
what a batch waits. No GPU machine here: the GPU figure is marked not measured.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from mlbatch.backends.slots import LocalSlots

from bench.stats import median
from bench.steps import in_process, through_local_backend

NAME = "Model steps per fold: train.gbdt and train.mlp"
MEASURES = (
    "Per-fold time and 5-fold step wall of train.gbdt and train.mlp on the churn_training table "
    "(200,000 rows, 5 folds: 160,000 training rows per fold), with the example spec's params, through "
    "LocalBackend at 1 vcpu (one CPU thread) per shard; local capacity 1 (one shard at a time) vs 2 (two "
    "at once). Per fold: the worker's own time from its manifest (median and range of the 5 folds), "
    "without process start and imports; wall: the whole step as a batch waits for it. One run each."
)
ROWS = 200_000
SHARDS = 5
MODELS = {  # the params of dags/specs/churn_training.yaml
    "train.gbdt": {"max_iter": 150, "learning_rate": 0.1},
    "train.mlp": {"hidden": [64, 32], "epochs": 8, "patience": 2, "batch_size": 2048},
}
CAPACITIES = (1, 2)


def run() -> dict:
    import torch

    with tempfile.TemporaryDirectory(prefix="mlbatch-bench-tabular-") as tmp:
        root = Path(tmp)
        began = time.perf_counter()
        features = in_process(root / "features", "features.synthetic", {"rows": ROWS, "seed": 7}, {})
        prepare_s = time.perf_counter() - began
        runs = {worker: {str(c): _train(root, worker, params, features, c) for c in CAPACITIES}
                for worker, params in MODELS.items()}
    return {"rows": ROWS, "shards": SHARDS, "params": MODELS, "prepare_s": prepare_s, "runs": runs,
            "gpu": "cuda" if torch.cuda.is_available() else None}


def table(result: dict) -> tuple[list[str], list[list[object]]]:
    headers = ["step", "per fold, median (s)", "per fold, range (s)", "5-fold wall, 1 shard at a time (s)",
               "5-fold wall, 2 at once (s)", "speed-up", "detail"]
    rows = []
    for worker, by_capacity in result["runs"].items():
        one, two = by_capacity["1"], by_capacity["2"]
        folds = one["fold_s"]
        detail = f"out-of-fold AUC {one['auc_median']:.3f} (median of folds)"
        if one.get("epochs"):
            detail += f"; epochs run {', '.join(map(str, one['epochs']))}"
        rows.append([worker, round(median(folds), 1), f"{min(folds):.1f}-{max(folds):.1f}", round(one["wall_s"], 1),
                     round(two["wall_s"], 1), f"{one['wall_s'] / two['wall_s']:.2f}x", detail])
    gpu = "measured above on " + result["gpu"] if result["gpu"] else "not measured (no GPU on this machine)"
    rows.append(["train.mlp on a GPU", "-", "-", "-", "-", "-", gpu])
    return headers, rows


def _train(root: Path, worker: str, params: dict, features: str, capacity: int) -> dict:
    slots = LocalSlots(capacity=capacity, directory=root / f"slots-{worker}-{capacity}")
    step = through_local_backend(worker, params, {"features": features}, str(root / f"{worker}-{capacity}"),
                                 SHARDS, memory_mib=3072, slots=slots)
    result, wall, shards = step.result, step.wall_s, step.manifest["shards"]
    return {
        "wall_s": wall,
        "fold_s": [s["duration_s"] for s in shards],
        "auc_median": median([s["metrics"]["auc"] for s in shards]),
        "epochs": [s["metrics"]["epochs"] for s in shards if "epochs" in s["metrics"]],
        "peak_rss_mib": max(o.peak_rss_mib for o in result.outcomes),
    }
