"""The catalogue of workers: name -> where its function lives and its typed params.

Cheap to import (no pandas, sklearn, torch): the Airflow side reads it at DAG parse
time to validate specs, the worker side resolves the function lazily.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from pydantic import BaseModel

from workers import params as p


BINARY, REGRESSION = "binary", "regression"
BOTH_TASKS = {BINARY: ("auc", "logloss"), "multiclass": ("auc", "logloss"), REGRESSION: ("rmse", "mae")}  # by task


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    target: str  # "module:function", imported only when the worker runs
    params: type[BaseModel]
    summary: str
    metrics: tuple[str, ...] = ()  # the step metrics it reports whatever the task: what a gate may read
    tracked: bool = False  # its committed steps are logged as MLflow runs (models, not checks or embeddings)
    # a model worker: the tasks it handles and the metrics it reports for each (checked by lint)
    task_metrics: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # a data worker: the task of the table it writes, fixed or read from this param
    makes_task: str | None = None
    task_param: str | None = None
    # "module:function" of the step's own metrics, computed from every shard manifest at commit
    step_metrics: str | None = None

    def reported(self, task: str | None = None) -> tuple[str, ...]:
        """The metrics a step of this worker reports on a table of `task` (None: of any task)."""
        by_task = [self.task_metrics.get(task, ())] if task else list(self.task_metrics.values())
        return tuple(dict.fromkeys([*(m for ms in by_task for m in ms), *self.metrics]))

    def table_task(self, params: Mapping[str, Any] | None) -> str | None:
        """The task of the table a data worker writes with these params; None for other workers."""
        if self.task_param is None:
            return self.makes_task
        given = (params or {}).get(self.task_param)
        return given if isinstance(given, str) else self.params.model_fields[self.task_param].default

    def load(self) -> Callable:
        return _resolve(self.target)

    def combined_metrics(self, shards: list[dict[str, Any]]) -> dict[str, Any]:
        """The step's metrics from its shards' manifests (see step_metrics); none without a combiner."""
        return _resolve(self.step_metrics)(shards) if self.step_metrics else {}


def _resolve(target: str) -> Callable:
    module_name, func_name = target.split(":")
    return getattr(importlib.import_module(module_name), func_name)


OOF = "workers.tabular.oof:step_metrics"


WORKERS: dict[str, WorkerInfo] = {
    info.name: info
    for info in [
        WorkerInfo("table.load", "workers.tabular.table:load", p.TableParams,
                   "Any CSV/Parquet table (any fsspec URI): label, id, columns; infers and records its schema",
                   task_param="task"),
        WorkerInfo("features.synthetic", "workers.tabular.features:synthetic", p.FeaturesParams,
                   "Churn-like tabular features (the demo's table, with its schema): synthetic rows or a file",
                   makes_task=BINARY),
        WorkerInfo("train.gbdt", "workers.tabular.train:gbdt", p.TrainParams,
                   "Gradient boosting (native categoricals) on any table schema; one cross-validation fold per shard",
                   ("folds",), tracked=True, task_metrics=BOTH_TASKS, step_metrics=OOF),
        WorkerInfo("train.mlp", "workers.tabular.mlp:mlp", p.MLPParams,
                   "Torch MLP (standardised numerics, categorical embeddings, early stopping, TensorBoard "
                   "curves); one cross-validation fold per shard, GPU when asked for and present",
                   ("best_epoch", "folds"), tracked=True, task_metrics=BOTH_TASKS, step_metrics=OOF),
        WorkerInfo("ensemble.average", "workers.tabular.ensemble:average", p.EnsembleParams,
                   "Average the fold models; report out-of-fold AUC and log loss (regression: RMSE, MAE)",
                   ("folds",), tracked=True, task_metrics=BOTH_TASKS),
        WorkerInfo("ensemble.stack", "workers.tabular.stack:stack", p.StackParams,
                   "Stack or average several model steps on their out-of-fold predictions (binary: logistic "
                   "regression, ROC, calibration and importance plots; regression: linear regression)",
                   ("folds", "models"), tracked=True, task_metrics=BOTH_TASKS),
        WorkerInfo("predict.batch", "workers.tabular.predict:batch", p.PredictParams,
                   "Score table rows with a model (its own schema); one slice of rows per shard; "
                   "metrics of the labelled rows where the table has the label",
                   ("mean_score",), task_metrics=BOTH_TASKS),
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
