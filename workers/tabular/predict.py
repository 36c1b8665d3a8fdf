"""predict.batch: score feature rows with a model, one contiguous slice per shard."""
from __future__ import annotations

import os
from typing import Any

import pandas as pd

from workers import artifacts

from workers.tabular import metrics
from workers.errors import BadInput
from workers.tabular.features import ID, LABEL, read_features, to_matrix
from workers.tabular.models import AveragedModel
from workers.request import ShardResult, StepRequest


def batch(request: StepRequest) -> ShardResult:
    model = _load_model(_model_manifest(request))
    df = read_features(request.input_with("features"))
    start, stop = slice_bounds(len(df), request.shard_index, request.shard_count)
    rows = df.iloc[start:stop]

    score = model.predict_proba(to_matrix(rows))[:, 1] if len(rows) else []
    scores = pd.DataFrame({ID: rows[ID].to_numpy(), "score": score})
    scores["score"] = scores["score"].astype("float64")
    scores["flagged"] = scores["score"] >= request.settings.threshold
    uri = artifacts.write_parquet(request.shard_path("scores.parquet"), scores)

    result_metrics: dict[str, Any] = {"mean_score": float(scores["score"].mean()) if len(rows) else None}
    if LABEL in rows.columns:
        result_metrics["auc"] = metrics.auc(rows[LABEL], scores["score"])
    return ShardResult(
        counts={"rows": len(rows), "flagged": int(scores["flagged"].sum())},
        metrics=result_metrics,
        outputs={"scores": uri},
    )


def slice_bounds(total: int, shard: int, shards: int) -> tuple[int, int]:
    """Rows [i*N//n, (i+1)*N//n): every row in exactly one shard, sizes differ by at most one."""
    return shard * total // shards, (shard + 1) * total // shards


def _model_manifest(request: StepRequest) -> dict[str, Any]:
    if request.settings.model is None:
        return request.input_with("model")
    root = os.environ.get("MLBATCH_ARTIFACTS")
    if not root:
        raise BadInput("params.model needs MLBATCH_ARTIFACTS (the artifact root) in the worker's environment")
    return artifacts.read_latest(root, request.settings.model)


def _load_model(manifest: dict[str, Any]) -> Any:
    # a training step has one model per fold: score with their average
    models = [artifacts.read_joblib(uri) for uri in artifacts.step_output_uris(manifest, "model")]
    return models[0] if len(models) == 1 else AveragedModel(models)
