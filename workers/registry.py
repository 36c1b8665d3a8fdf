"""The catalogue of workers: name -> where its function lives and its typed params.

Cheap to import (no pandas, sklearn, torch): the Airflow side reads it at DAG parse
time to validate specs, the worker side resolves the function lazily.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from pydantic import BaseModel

from workers import params as p


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    target: str  # "module:function", imported only when the worker runs
    params: type[BaseModel]
    summary: str
    metrics: tuple[str, ...] = ()  # the step metrics it reports: what a gate may read (checked by lint)
    tracked: bool = False  # its committed steps are logged as MLflow runs (models, not checks or embeddings)

    def load(self) -> Callable:
        module_name, func_name = self.target.split(":")
        return getattr(importlib.import_module(module_name), func_name)


WORKERS: dict[str, WorkerInfo] = {
    info.name: info
    for info in [
        WorkerInfo("table.load", "workers.tabular.table:load", p.TableParams,
                   "Any CSV/Parquet table (any fsspec URI): label, id, columns; infers and records its schema"),
        WorkerInfo("features.synthetic", "workers.tabular.features:synthetic", p.FeaturesParams,
                   "Churn-like tabular features (the demo's table, with its schema): synthetic rows or a file"),
        WorkerInfo("train.gbdt", "workers.tabular.train:gbdt", p.TrainParams,
                   "Gradient boosting (native categoricals) on any table schema; one cross-validation fold per shard",
                   ("auc", "logloss", "rmse", "mae"), tracked=True),
        WorkerInfo("train.mlp", "workers.tabular.mlp:mlp", p.MLPParams,
                   "Torch MLP (standardised numerics, categorical embeddings, early stopping, TensorBoard "
                   "curves); one cross-validation fold per shard, GPU when asked for and present",
                   ("auc", "logloss", "rmse", "mae", "best_epoch"), tracked=True),
        WorkerInfo("ensemble.average", "workers.tabular.ensemble:average", p.EnsembleParams,
                   "Average the fold models; report out-of-fold AUC and log loss (regression: RMSE, MAE)",
                   ("auc", "logloss", "rmse", "mae", "folds"), tracked=True),
        WorkerInfo("ensemble.stack", "workers.tabular.stack:stack", p.StackParams,
                   "Stack or average several model steps on their out-of-fold predictions; "
                   "ROC, calibration and importance plots", ("auc", "logloss", "folds", "models"), tracked=True),
        WorkerInfo("predict.batch", "workers.tabular.predict:batch", p.PredictParams,
                   "Score table rows with a model (its own schema); one slice of rows per shard",
                   ("mean_score", "auc", "logloss", "rmse", "mae")),
        WorkerInfo("drift.features", "workers.tabular.drift:features", p.DriftParams,
                   "Drift of each feature between a reference table and a new one (PSI or KS)",
                   ("drift", "drift_mean")),
        WorkerInfo("articles.corpus", "workers.text.corpus:articles", p.CorpusParams,
                   "Articles built offline from the docstrings of installed packages (deterministic)"),
        WorkerInfo("history.synthetic", "workers.text.corpus:history", p.HistoryParams,
                   "Synthetic reading history of users over an articles table"),
        WorkerInfo("embed.text", "workers.text.embed:text", p.EmbedParams,
                   "Sentence embeddings (all-MiniLM-L6-v2) of a text column; one slice of rows per shard, GPU when present"),
        WorkerInfo("recommend.topk", "workers.text.recommend:topk", p.RecommendParams,
                   "Top-k articles of the day per user by cosine to their reading history; one slice of users per shard"),
        WorkerInfo("check.noop", "workers.checks:noop", p.NoopParams,
                   "Do nothing and commit an empty output (overhead checks)"),
        WorkerInfo("check.sleep", "workers.checks:sleep", p.SleepParams,
                   "Sleep for a while (timeouts, concurrency)", ("slept_s",)),
        WorkerInfo("check.memory", "workers.checks:memory", p.MemoryParams,
                   "Hold a given amount of resident memory (memory budgets)", ("peak_rss_mib",)),
        WorkerInfo("check.fail", "workers.checks:fail", p.FailParams,
                   "Fail on chosen tries/shards, as bad input or as a crash (retries, alerts)"),
    ]
}


def get_worker(name: str) -> WorkerInfo:
    try:
        return WORKERS[name]
    except KeyError:
        raise KeyError(f"unknown worker {name!r}; known: {', '.join(sorted(WORKERS))}") from None
