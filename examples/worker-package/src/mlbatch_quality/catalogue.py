"""The workers of this package, as mlbatch reads them when it lints and parses a batch.

Stdlib only: the params model is named by "module:Class" and the function by "module:function",
so `mlbatch lint` and the DAG loaders never import pandas nor the function's module.
"""
from workers.info import WorkerInfo

NULLS = WorkerInfo(
    "quality.nulls", "mlbatch_quality.nulls:nulls", "mlbatch_quality.params:NullsParams",
    "Share of missing values of each column of an input step's table; a gate can stop a batch on it",
    metrics=("null_share", "rows"),
)
