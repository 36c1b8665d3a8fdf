"""Model steps, one cross-validation fold per shard: train.gbdt here, train.mlp in mlp.py.

Shard i of n >= 2 trains on every fold but i and predicts fold i (out-of-fold); with n == 1
it trains on 80% and predicts a 20% holdout (workers.tabular.folds). Per shard outputs:
`model` (a pickled workers.tabular.models object) and `oof` (row, id, y, pred; multiclass: y is the
class index and pred_0 .. pred_{k-1} its probabilities).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from workers import artifacts
from workers.request import ShardResult, StepRequest
from workers.tabular import folds, metrics
from workers.tabular.models import GBDTModel, predict_scores
from workers.tabular.schema import TableSchema, read_schema
from workers.tabular.table import read_features


@dataclass
class Fold:
    """What a model step trains on: the whole table, its schema, and this shard's rows."""

    request: StepRequest
    schema: TableSchema
    table: pd.DataFrame
    y: np.ndarray
    train_rows: np.ndarray
    test_rows: np.ndarray


@dataclass
class Fitted:
    model: Any
    outputs: dict[str, str]  # more outputs than model and oof (e.g. tensorboard)
    metrics: dict[str, Any]


def train_fold(request: StepRequest, fit: Callable[[Fold], Fitted]) -> ShardResult:
    """Read the data step, split this shard's fold, fit, and write the model and its out-of-fold rows."""
    manifest = request.input_with("features")
    schema = read_schema(manifest)
    df = read_features(manifest)
    y = schema.labels(df, where=f"table of input step {manifest.get('step_uri')}")
    train_rows, test_rows = folds.split(y, request.shard_index, request.shard_count, request.settings.seed,
                                        schema.task)
    fitted = fit(Fold(request, schema, df, y, train_rows, test_rows))
    pred = predict_scores(fitted.model, df.iloc[test_rows])

    oof = pd.DataFrame({"row": test_rows.astype(np.int64), schema.id: df[schema.id].to_numpy()[test_rows],
                        "y": y[test_rows], **metrics.pred_columns(pred)})
    outputs = {
        "model": artifacts.write_joblib(request.shard_path("model.joblib"), fitted.model),
        "oof": artifacts.write_parquet(request.shard_path("oof.parquet"), oof),
        **fitted.outputs,
    }
    return ShardResult(
        counts={"train_rows": len(train_rows), "oof_rows": len(test_rows)},
        metrics={**metrics.scores(schema.task, y[test_rows], metrics.read_pred(oof)), **fitted.metrics},
        outputs=outputs,
        extra={"task": schema.task},
    )


def gbdt(request: StepRequest) -> ShardResult:
    return train_fold(request, fit_gbdt)


def fit_gbdt(fold: Fold) -> Fitted:
    """HistGradientBoosting with native categorical support: the schema's categoricals arrive as
    pandas Categorical, which categorical_features="from_dtype" splits on by category."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    s = fold.request.settings
    estimator_class = HistGradientBoostingRegressor if fold.schema.task == "regression" else HistGradientBoostingClassifier
    estimator = estimator_class(
        max_iter=s.max_iter,
        learning_rate=s.learning_rate,
        max_depth=s.max_depth,
        max_leaf_nodes=s.max_leaf_nodes,
        categorical_features="from_dtype",
        early_stopping=False,  # a fold must not depend on an inner random split
        random_state=s.seed,
    )
    X = fold.schema.frame(fold.table.iloc[fold.train_rows], where="the training table")
    estimator.fit(X, fold.y[fold.train_rows])
    return Fitted(GBDTModel(fold.schema, estimator), outputs={}, metrics={})
