"""table.load: any CSV or Parquet table (any fsspec URI) with its schema, for every downstream step.

Writes the table (feature columns as read, the id, and the label as 0/1 for binary tasks, as read
for multiclass ones, whose classes the schema lists) to
`features`, its schema (workers.tabular.schema) to `schema` and into the shard manifest.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from workers import artifacts
from workers.errors import BadInput, Transient, transient_cause
from workers.request import ShardResult, StepRequest
from workers.tabular import label_task as task_rule
from workers.tabular.schema import ROW_ID, TableSchema, sorted_plain, infer
from workers.tabular.source import CSV, PARQUET, missing_source


def load(request: StepRequest) -> ShardResult:
    if request.shard_count != 1:
        raise BadInput(f"table.load runs as one shard, got shards={request.shard_count}")
    s = request.settings
    where = f"source {s.source}"
    df = read_source(s.source)
    if df.empty:
        raise BadInput(f"{where} is empty: no rows (columns: {', '.join(map(str, df.columns)) or 'none'})")
    df = _select(df, s.columns, keep=[c for c in (s.label, s.id) if c], where=where)
    id_column = _id_column(df, s.id, where)
    dropped, task = 0, label_task(df, s.label, s.task, s.positive, where)
    if s.label is not None:
        df, dropped = _with_label(df, s.label, task, s.positive, where)
    schema = infer(df, label=s.label, id=id_column, task=task, categorical=s.categorical, numeric=s.numeric,
                   max_int_categories=s.max_int_categories, max_categories=s.max_categories, where=where)
    if task == "multiclass" and s.label is not None:
        schema.classes = sorted_plain(df[s.label].unique().tolist())
        print(f"table.load: multiclass label {s.label!r}, {len(schema.classes)} classes", flush=True)
    if id_column is None:
        df.insert(0, ROW_ID, np.arange(len(df), dtype=np.int64))
    print(f"table.load: {len(df)} rows; {len(schema.numeric)} numeric: {', '.join(schema.numeric) or '-'}; "
          f"{len(schema.categorical)} categorical: {', '.join(schema.categorical) or '-'}"
          + (f"; {dropped} rows without a label dropped" if dropped else ""), flush=True)
    return write_table(request, df, schema, counts={"unlabelled_dropped": dropped} if dropped else None)


def write_table(request: StepRequest, df: pd.DataFrame, schema: TableSchema,
                counts: dict[str, Any] | None = None) -> ShardResult:
    """Write a data step's outputs: `features` (the table) and `schema` (also in the manifest)."""
    columns = [schema.id, *schema.features] + ([schema.label] if schema.label in df.columns else [])
    table = df[columns]
    result_counts: dict[str, Any] = {"rows": len(table), "columns": table.shape[1], **(counts or {})}
    if schema.task == "binary" and schema.label in table.columns:
        result_counts["positives"] = int(table[schema.label].sum())
    return ShardResult(
        counts=result_counts,
        outputs={"features": artifacts.write_parquet(request.shard_path("features.parquet"), table),
                 "schema": artifacts.write_bytes(request.shard_path("schema.json"), schema.to_json().encode())},
        extra={"schema": schema.model_dump(mode="json")},
    )


def read_features(manifest: dict[str, Any]) -> pd.DataFrame:
    """All rows of a committed data step, in shard order."""
    frames = [artifacts.read_parquet(uri) for uri in artifacts.step_output_uris(manifest, "features")]
    if not frames:
        raise BadInput(f"input step at {manifest.get('step_uri')} has no 'features' table")
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def read_source(source: str) -> pd.DataFrame:
    """A CSV (optionally compressed) or Parquet file at any fsspec URI; BadInput naming the file."""
    import fsspec

    lower = source.lower()
    if not lower.endswith(CSV + PARQUET):
        raise BadInput(f"source {source}: expected a .csv or .parquet file (.csv.gz and .tsv are read too)")
    try:
        found = artifacts.exists(source)
    except Exception as exc:
        raise _unreadable(source, exc) from exc
    if not found:
        raise BadInput(missing_source(source))
    try:
        if lower.endswith(PARQUET):
            return artifacts.read_parquet(source)
        with fsspec.open(source, "rb", compression="infer") as fh:
            return pd.read_csv(fh, sep="\t" if lower.endswith(".tsv") else ",")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except Exception as exc:
        raise _unreadable(source, exc) from exc


def _unreadable(source: str, exc: Exception) -> Exception:
    """A dropped connection, an S3 5xx or a full disk is retried; any other error means the file is unusable."""
    if cause := transient_cause(exc):
        return Transient(f"source {source} could not be read: {cause}")
    return BadInput(f"source {source} is unreadable: {type(exc).__name__}: {exc}")


def _select(df: pd.DataFrame, columns: Any, keep: list[str], where: str) -> pd.DataFrame:
    if columns is None:
        return df
    listed = columns.include if columns.include is not None else columns.exclude
    unknown = [c for c in listed if c not in df.columns]
    if unknown:
        field = "include" if columns.include is not None else "exclude"
        raise BadInput(f"{where}: params.columns.{field} names {', '.join(map(repr, unknown))}, not a column "
                       f"(columns: {', '.join(map(str, df.columns))})")
    if columns.include is not None:
        return df[[c for c in df.columns if c in columns.include or c in keep]]
    return df.drop(columns=[c for c in columns.exclude if c not in keep])


def _id_column(df: pd.DataFrame, id_column: str | None, where: str) -> str | None:
    if id_column is None:
        if ROW_ID in df.columns:
            raise BadInput(f"{where} has a column {ROW_ID!r}, the name of the id column added to tables "
                           f"without one: set params.id: {ROW_ID} (if it is an id) or rename it")
        return None
    if id_column not in df.columns:
        raise BadInput(f"{where} has no id column {id_column!r} (params.id); columns: {', '.join(map(str, df.columns))}")
    if df[id_column].isna().any() or df[id_column].duplicated().any():
        raise BadInput(f"{where}: id column {id_column!r} has missing or duplicate values; "
                       f"fix them or leave params.id out (a row_id is added)")
    return id_column


def label_task(df: pd.DataFrame, label: str | None, task: str | None, positive: Any, where: str) -> str:
    """The task given, else binary with params.positive, else the one the label's values tell."""
    if task is not None:
        return task
    if positive is not None or label is None or label not in df.columns:
        return "binary"
    found = task_rule.detect(df[label].dropna().unique().tolist())
    print(f"table.load: task {found}, from the values of label {label!r} (set params.task to choose)", flush=True)
    return found


def _with_label(df: pd.DataFrame, label: str, task: str, positive: Any,
                where: str) -> tuple[pd.DataFrame, int]:
    """The table with its label checked and encoded (binary: 0/1), rows without a label dropped."""
    if label not in df.columns:
        raise BadInput(f"{where} has no label column {label!r} (params.label); "
                       f"columns: {', '.join(map(str, df.columns))}")
    labelled = df[df[label].notna()].copy()
    dropped = len(df) - len(labelled)
    if labelled.empty:
        raise BadInput(f"{where}: label column {label!r} is empty in every row")
    values = labelled[label]
    if task == "regression":
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.isna().any():
            bad = values[numbers.isna()].iloc[0]
            raise BadInput(f"{where}: label column {label!r} holds non-numeric values (e.g. {bad!r}); "
                           f"task regression needs numbers (or task: multiclass for classes)")
        labelled[label] = numbers.astype("float64")
        return labelled, dropped
    if task == "multiclass":
        if values.nunique() < 3:
            raise BadInput(f"{where}: label column {label!r} has {values.nunique()} distinct value(s); task multiclass "
                           f"needs three or more (two: task binary with params.positive)")
        return labelled, dropped
    labelled[label] = _binary(values, label, positive, where)
    if labelled[label].nunique() < 2:
        raise BadInput(f"{where}: label column {label!r} has one class only ({int(labelled[label].iloc[0])}); "
                       f"a binary model needs rows of both classes")
    return labelled, dropped


def _binary(values: pd.Series, label: str, positive: Any, where: str) -> pd.Series:
    distinct = values.unique().tolist()
    if positive is not None:
        matches = values.astype(str) == str(positive)
        if not matches.any():
            raise BadInput(f"{where}: params.positive {positive!r} never occurs in label column {label!r} "
                           f"(values: {', '.join(map(repr, sorted(map(str, distinct))[:10]))})")
        if len(distinct) > 2:
            raise BadInput(f"{where}: label column {label!r} has {len(distinct)} distinct values, task binary "
                           f"needs two; use task: multiclass (a class per value), task: regression (a number) "
                           f"or map the label to two values")
        return matches.astype("int64")
    if set(distinct) <= {0, 1}:  # also True/False and 0.0/1.0
        return values.astype("int64")
    shown = ", ".join(map(repr, sorted(map(str, distinct))[:10]))
    raise BadInput(f"{where}: label column {label!r} is not binary (values: {shown}"
                   f"{', ...' if len(distinct) > 10 else ''}); task binary needs 0/1 or true/false: set "
                   f"params.positive to the value that counts as 1, task: multiclass (a class per value) or "
                   f"task: regression (a number)")
