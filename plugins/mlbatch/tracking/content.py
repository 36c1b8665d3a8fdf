"""What a committed step contributes to its MLflow run: tags, params, metrics, files. No mlflow here.

Everything comes from the step's committed manifest, which the workers wrote (out-of-fold
metrics over every fold, the task): no worker code is imported and no data file is read.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from workers.step_output import shard_folder

PLOT_SUFFIX = ".png"


@dataclass(frozen=True)
class StepRecord:
    dag_id: str
    run_id: str  # the Airflow run that computed the step
    step: str
    worker: str
    key: str  # cache key
    manifest: dict[str, Any]  # the committed step manifest

    @property
    def shards(self) -> list[dict[str, Any]]:
        return self.manifest.get("shards", [])

    def tags(self) -> dict[str, str]:
        return {
            "mlbatch.kind": "step",
            "mlbatch.dag_id": self.dag_id,
            "mlbatch.run_id": self.run_id,
            "mlbatch.step": self.step,
            "mlbatch.worker": self.worker,
            "mlbatch.cache_key": self.key,
            "mlbatch.code_version": str((self.manifest.get("cache") or {}).get("code_version", "")),
            "mlbatch.output": self.manifest.get("step_uri", ""),
            "mlbatch.committed_at": self.manifest.get("committed_at", ""),
            "mlbatch.task": str(self.manifest.get("task", "")),
        }

    def params(self) -> dict[str, str]:
        """The worker's validated params (defaults filled in) and the shard count."""
        given = self.shards[0].get("params", {}) if self.shards else {}
        flat = {name: value if isinstance(value, str) else json.dumps(value) for name, value in given.items()}
        return {**flat, "shards": str(self.manifest.get("shard_count", len(self.shards)))}

    def fold_metrics(self) -> list[tuple[str, float, int]]:
        """(name, value, fold) of every numeric shard metric: `fold_auc` at step i and `fold_i_auc`."""
        rows = []
        if len(self.shards) < 2:
            return rows
        for shard in self.shards:
            i = shard["shard_index"]
            for name, value in _numbers(shard.get("metrics", {})).items():
                rows += [(f"fold_{name}", value, i), (f"fold_{i}_{name}", value, 0)]
        return rows

    def overall_metrics(self) -> dict[str, float]:
        """The step's own metrics (for a fold-per-shard step, out of fold over every fold, as its
        worker committed them) and, for a step of several shards, the fold means."""
        overall = _numbers(self.manifest.get("metrics", {}))
        if len(self.shards) < 2:
            return overall
        per_fold: dict[str, list[float]] = {}
        for shard in self.shards:
            for name, value in _numbers(shard.get("metrics", {})).items():
                per_fold.setdefault(name, []).append(value)
        overall.update({f"mean_fold_{name}": sum(v) / len(v) for name, v in per_fold.items()})
        return overall

    def files(self) -> list[tuple[str, str, str]]:
        """(output key, uri, artifact folder) of the models and plots: what the run keeps."""
        found = []
        for shard in self.shards:
            folder = shard_folder(shard["shard_index"]) if len(self.shards) > 1 else ""
            for key, uri in shard.get("outputs", {}).items():
                if key == "model":
                    found.append((key, uri, "/".join(filter(None, ["model", folder]))))
                elif str(uri).endswith(PLOT_SUFFIX):
                    found.append((key, uri, "/".join(filter(None, ["plots", folder]))))
        return found


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

