"""The project's own workers, declared like any worker package's: one WorkerInfo each, registered
under the entry-point group `mlbatch.workers` by pyproject.toml (`python -m workers list` shows them).

Cheap to import (stdlib only): each params model is named by "module:Class" and imported on first
use, each function only when a shard runs it.
"""
from __future__ import annotations

from workers.info import WorkerInfo

BINARY, REGRESSION = "binary", "regression"
BOTH_TASKS = {BINARY: ("auc", "logloss"), "multiclass": ("auc", "logloss"),  # a model worker's metrics by task
              REGRESSION: ("rmse", "mae")}
OOF = "workers.tabular.oof:step_metrics"
TABULAR, TEXT, CHECKS = "workers.params", "workers.text.params", "workers.check_params"
CALL = "workers.call_params"

TABLE_LOAD = WorkerInfo(
    "table.load", "workers.tabular.table:load", f"{TABULAR}:TableParams",
    "Any CSV/Parquet table (any fsspec URI): label, id, columns; infers and records its schema",
    task_param="task")
FEATURES_SYNTHETIC = WorkerInfo(
    "features.synthetic", "workers.tabular.features:synthetic", f"{TABULAR}:FeaturesParams",
    "Churn-like tabular features (the demo's table, with its schema): synthetic rows or a file",
    makes_task=BINARY)
TRAIN_GBDT = WorkerInfo(
    "train.gbdt", "workers.tabular.train:gbdt", f"{TABULAR}:TrainParams",
    "Gradient boosting (native categoricals) on any table schema; one cross-validation fold per shard",
    ("folds",), tracked=True, task_metrics=BOTH_TASKS, step_metrics=OOF)
TRAIN_MLP = WorkerInfo(
    "train.mlp", "workers.tabular.mlp:mlp", f"{TABULAR}:MLPParams",
    "Torch MLP (standardised numerics, categorical embeddings, early stopping, TensorBoard "
    "curves); one cross-validation fold per shard, GPU when asked for and present",
    ("best_epoch", "folds"), tracked=True, task_metrics=BOTH_TASKS, step_metrics=OOF)
ENSEMBLE_AVERAGE = WorkerInfo(
    "ensemble.average", "workers.tabular.ensemble:average", f"{TABULAR}:EnsembleParams",
    "Average the fold models; report out-of-fold AUC and log loss (regression: RMSE, MAE)",
    ("folds",), tracked=True, task_metrics=BOTH_TASKS)
ENSEMBLE_STACK = WorkerInfo(
    "ensemble.stack", "workers.tabular.stack:stack", f"{TABULAR}:StackParams",
    "Stack or average several model steps on their out-of-fold predictions (binary: logistic "
    "regression, ROC, calibration and importance plots; regression: linear regression)",
    ("folds", "models"), tracked=True, task_metrics=BOTH_TASKS)
PREDICT_BATCH = WorkerInfo(
    "predict.batch", "workers.tabular.predict:batch", f"{TABULAR}:PredictParams",
    "Score table rows with a model (its own schema); one slice of rows per shard; "
    "metrics of the labelled rows where the table has the label",
    ("mean_score",), task_metrics=BOTH_TASKS)
DRIFT_FEATURES = WorkerInfo(
    "drift.features", "workers.tabular.drift:features", f"{TABULAR}:DriftParams",
    "Drift of each feature between a reference table and a new one (PSI or KS)",
    ("drift", "drift_mean"))
ARTICLES_CORPUS = WorkerInfo(
    "articles.corpus", "workers.text.corpus:articles", f"{TEXT}:CorpusParams",
    "Articles built offline from the docstrings of installed packages (deterministic)")
HISTORY_SYNTHETIC = WorkerInfo(
    "history.synthetic", "workers.text.corpus:history", f"{TEXT}:HistoryParams",
    "Synthetic reading history of users over an articles table")
EMBED_TEXT = WorkerInfo(
    "embed.text", "workers.text.embed:text", f"{TEXT}:EmbedParams",
    "Sentence embeddings (all-MiniLM-L6-v2) of a text column; one slice of rows per shard, GPU when present")
RECOMMEND_TOPK = WorkerInfo(
    "recommend.topk", "workers.text.recommend:topk", f"{TEXT}:RecommendParams",
    "Top-k articles of the day per user by cosine to their reading history; one slice of users per shard")
CHECK_NOOP = WorkerInfo(
    "check.noop", "workers.checks:noop", None,
    "Do nothing and commit an empty output (overhead checks)")
CHECK_SLEEP = WorkerInfo(
    "check.sleep", "workers.checks:sleep", f"{CHECKS}:SleepParams",
    "Sleep for a while (timeouts, concurrency)", ("slept_s",))
CHECK_MEMORY = WorkerInfo(
    "check.memory", "workers.checks:memory", f"{CHECKS}:MemoryParams",
    "Hold a given amount of resident memory (memory budgets)", ("peak_rss_mib",))
CHECK_FAIL = WorkerInfo(
    "check.fail", "workers.checks:fail", f"{CHECKS}:FailParams",
    "Fail on chosen tries/shards, as bad input or as a crash (retries, alerts)")
PYTHON_CALL = WorkerInfo(
    "python.call", "workers.python_call:call", f"{CALL}:CallParams",
    "Call a Python function by reference (module:qualname) with JSON arguments; its return value is the "
    "step's result.json (what `mlbatch.sdk.step` runs); metrics: those the function reports (shard.metric)",
    own_metrics=True, step_metrics="workers.shard_metrics:mean_over_shards")

# name -> entry-point value, as pyproject.toml declares them (a test holds the two equal): the
# registry reads these too where the project runs from its source folder without being installed
# (the worker image copies workers/ onto PYTHONPATH, so it has no entry-point metadata of its own)
ENTRY_POINTS: dict[str, str] = {
    info.name: f"{__name__}:{constant}"
    for constant, info in list(globals().items()) if isinstance(info, WorkerInfo)
}
