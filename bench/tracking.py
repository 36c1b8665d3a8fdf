"""What MLflow tracking costs a model step after its last shard finished.

Preparation (untimed): features.synthetic (20,000 rows), a 5-fold train.gbdt and its
ensemble.average, committed in a temporary artifact root. Then each scenario starts fresh Python
processes, one per step, as Airflow starts one per task, and each process times `track_step`:
importing mlflow, opening the store (creating its tables on first use), the parent run, the
nested run with params and metrics, and the models copied into the run's artifacts.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.stats import median
from bench.steps import in_process

NAME = "Tracking: MLflow cost per model step"
MEASURES = (
    "Seconds from a step's commit to its MLflow run being logged (`track_step` in a fresh process, as in "
    "an Airflow task: mlflow import included), on the default SQLite store under the artifact root. "
    "Fresh store: the first step of a new artifact root, which creates MLflow's tables; existing store: "
    "every later step. Preloaded: mlflow imported while the workers ran (`tracking.steps.preload`). Two at once: two steps of one run committing together (train and train_mlp in the "
    "example), each in its own process. Median of 3 runs each; goal: under 2 s per step."
)
ONE_STEP = """
import json, logging, sys, time
from workers import artifacts
from mlbatch.tracking.content import StepRecord
from mlbatch.tracking.steps import track_step
root, uri, step, run_id, preloaded = sys.argv[1:6]
if preloaded == "yes":  # what the step operator's preload does while the workers run
    from mlbatch.tracking.steps import preload
    preload().join()
manifest = artifacts.read_step_manifest(uri)
record = StepRecord("bench", run_id, step, manifest["shards"][0]["worker"], f"k-{step}-{run_id}", manifest)
began = time.perf_counter()
where = track_step(record, root=root, cache_hit=False, log=logging.getLogger("bench"))
print(json.dumps({"seconds": time.perf_counter() - began, "tracked": where is not None}))
"""
REPEATS = 3


def _prepare(root: Path) -> dict[str, str]:
    features = in_process(root / "features", "features.synthetic", {"rows": 20_000, "seed": 7}, {})
    train = in_process(root / "train", "train.gbdt", {"max_iter": 20}, {"features": features}, shards=5)
    return {"train": train, "ensemble": in_process(root / "ensemble", "ensemble.average", {}, {"train": train})}


def _track(root: Path, steps: list[tuple[str, str]], run_id: str, preloaded: bool = False) -> list[float]:
    """Track these (step, uri) at once, one process each; their seconds."""
    procs = [subprocess.Popen([sys.executable, "-c", ONE_STEP, str(root), uri, step, run_id,
                               "yes" if preloaded else "no"],
                              stdout=subprocess.PIPE, text=True) for step, uri in steps]
    seconds = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        found = json.loads(out.strip().splitlines()[-1])
        if proc.returncode or not found["tracked"]:
            raise RuntimeError(f"tracking failed in the benchmark (exit {proc.returncode}): {out}")
        seconds.append(found["seconds"])
    return seconds


def run() -> dict:
    import os

    os.environ.pop("MLBATCH_TRACKING_MLFLOW", None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    results: dict[str, list[float]] = {"fresh store, one step": [], "existing store, one step": [],
                                       "existing store, one step, mlflow preloaded": [],
                                       "fresh store, two at once": [], "existing store, two at once": []}
    with tempfile.TemporaryDirectory(prefix="mlbatch-bench-tracking-") as tmp:
        data = Path(tmp) / "data"
        steps = _prepare(data)
        for i in range(REPEATS):
            fresh, both = Path(tmp) / f"one-{i}", Path(tmp) / f"two-{i}"
            results["fresh store, one step"] += _track(fresh, [("train", steps["train"])], f"a{i}")
            results["existing store, one step"] += _track(fresh, [("ensemble", steps["ensemble"])], f"a{i}")
            results["existing store, one step, mlflow preloaded"] += _track(
                fresh, [("train", steps["train"])], f"p{i}", preloaded=True)
            pair = [("train", steps["train"]), ("ensemble", steps["ensemble"])]
            results["fresh store, two at once"] += _track(both, pair, f"b{i}")
            results["existing store, two at once"] += _track(both, pair, f"c{i}")
    return {name: [round(s, 2) for s in values] for name, values in results.items()}


def table(results: dict) -> tuple[list[str], list[list[object]]]:
    rows = [[name, f"{median(values):.1f}", f"{min(values):.1f} to {max(values):.1f}", len(values)]
            for name, values in results.items()]
    return ["scenario", "seconds per step (median)", "range", "steps timed"], rows
