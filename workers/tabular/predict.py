"""predict.batch: score table rows with a model, one contiguous slice per shard.

The model brings its own schema (workers.tabular.schema): the scoring table needs its training
columns (any order, extra columns ignored), and a missing one fails as bad input naming it.

Output `scores`: the id and `score` (binary: P(1), with `flagged`; regression: the prediction);
multiclass: `prediction` (the most likely class), `score` (its probability) and one column
`p_<class>` of probabilities per class.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from workers import artifacts
from workers.errors import BadInput
from workers.request import ShardResult, StepRequest
from workers.tabular import metrics
from workers.tabular.models import predict_scores, step_model
from workers.tabular.schema import read_schema
from workers.tabular.table import read_features


def batch(request: StepRequest) -> ShardResult:
    model_manifest = _model_manifest(request)
    model = step_model(model_manifest)
    table_manifest = request.input_with("features")
    df = read_features(table_manifest)
    id_column = _id_column(table_manifest, df, model.schema.id)
    start, stop = slice_bounds(len(df), request.shard_index, request.shard_count)
    rows = df.iloc[start:stop]
    where = f"the table of input step {table_manifest.get('step_uri')}"
    model.schema.frame(df.head(0), where=where)  # a missing training column: bad input, before any work

    multiclass = model.schema.task == "multiclass"
    empty = np.empty((0, len(model.schema.classes))) if multiclass else np.empty(0)
    score = np.asarray(predict_scores(model, rows), dtype="float64") if len(rows) else empty
    scores = pd.DataFrame({id_column: rows[id_column].to_numpy(),
                           **(class_columns(score, model.schema.classes) if multiclass else {"score": score})})
    counts: dict[str, Any] = {"rows": len(rows)}
    if model.schema.task == "binary":
        scores["flagged"] = scores["score"] >= request.settings.threshold
        counts["flagged"] = int(scores["flagged"].sum())
    uri = artifacts.write_parquet(request.shard_path("scores.parquet"), scores)

    result_metrics: dict[str, Any] = {"mean_score": float(scores["score"].mean()) if len(rows) else None}
    label = model.schema.label
    if label and label in rows.columns and len(rows):
        known = rows[label].notna().to_numpy()
        y = model.schema.labels(rows[known], where=where) if multiclass else rows[label].to_numpy()[known]
        result_metrics.update(metrics.scores(model.schema.task, y, score[known]))
    return ShardResult(counts=counts, metrics=result_metrics, outputs={"scores": uri})


def class_columns(probabilities: np.ndarray, classes: list[Any]) -> dict[str, Any]:
    """A multiclass model's scoring columns: the most likely class, its probability, each class's."""
    best = probabilities.argmax(axis=1) if len(probabilities) else np.empty(0, dtype="int64")
    return {"prediction": np.asarray(classes, dtype=object)[best] if len(classes) else best,
            "score": probabilities.max(axis=1) if len(probabilities) else np.empty(0),
            **{f"p_{name}": probabilities[:, k] for k, name in enumerate(classes)}}


def slice_bounds(total: int, shard: int, shards: int) -> tuple[int, int]:
    """Rows [i*N//n, (i+1)*N//n): every row in exactly one shard, sizes differ by at most one."""
    return shard * total // shards, (shard + 1) * total // shards


def _id_column(manifest: dict[str, Any], df: pd.DataFrame, model_id: str) -> str:
    """The scoring table's own id column (from its schema), else the one the model was trained with."""
    try:
        own = read_schema(manifest).id
    except BadInput:
        own = model_id
    if own not in df.columns:
        raise BadInput(f"the table of input step {manifest.get('step_uri')} has no id column {own!r}")
    return own


def _model_manifest(request: StepRequest) -> dict[str, Any]:
    if request.settings.model is None:
        return request.input_with("model")
    root = os.environ.get("MLBATCH_ARTIFACTS")
    if not root:
        raise BadInput("params.model needs MLBATCH_ARTIFACTS (the artifact root) in the worker's environment")
    return artifacts.read_latest(root, request.settings.model)
