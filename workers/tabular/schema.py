"""The schema of a table: which columns are the label, the id, numeric and categorical features.

The data step infers it once (`infer`) and writes it beside the table and into its manifest;
every model keeps a copy and builds its input with `frame`, so training and scoring agree on
the columns, their types and the codes of every category.

Type rule (`infer`), per feature column:
- listed in `categorical` -> categorical; listed in `numeric` -> numeric (both: explicit wins);
- strings, bools and pandas categoricals -> categorical;
- integers with at most `max_int_categories` distinct values (default 10) -> categorical
  (codes such as contract type or region number); more distinct values -> numeric;
- floats -> numeric (a float column holding only whole numbers is still numeric);
- anything else (dates, mixed objects) -> BadInput naming the column and the fix.
A categorical keeps its `max_categories` most frequent values (default 100); rarer ones, like
values first seen at scoring time, become missing. A text column with more distinct values than
that, all different (an identifier), is refused with the fix. Missing values are allowed everywhere.
"""
from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workers.errors import BadInput

ROW_ID = "row_id"  # the id column a table gets when it has none of its own


class TableSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: Literal["binary", "multiclass", "regression"] = "binary"
    label: str | None = None
    classes: list[Any] = Field(default_factory=list)  # multiclass: the label values; class k is classes[k]
    id: str = ROW_ID
    numeric: list[str] = Field(default_factory=list)
    categorical: dict[str, list[Any]] = Field(default_factory=dict)  # column -> its categories, in order

    @property
    def features(self) -> list[str]:
        """The model's input columns: numerics first, then categoricals."""
        return [*self.numeric, *self.categorical]

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> TableSchema:
        return cls.model_validate(json.loads(text))

    def frame(self, df: Any, where: str = "the table") -> Any:
        """The model input of `df`: feature columns only, numerics as float, categoricals as
        pandas Categorical with exactly this schema's categories (unknown values -> NaN)."""
        import pandas as pd

        missing = [c for c in self.features if c not in df.columns]
        if missing:
            raise BadInput(f"{where} lacks the training column(s) {', '.join(map(repr, missing))} that the model "
                           f"was trained on; add them (missing values are allowed) or retrain without them "
                           f"(params.columns.exclude of the data step)")
        out = {}
        for column in self.numeric:
            values = pd.to_numeric(df[column], errors="coerce")
            if values.isna().sum() > df[column].isna().sum():
                raise BadInput(f"{where}: column {column!r} is numeric in the model's schema but holds "
                               f"non-numeric values; clean them or leave them empty")
            out[column] = values.astype("float64")
        for column, categories in self.categorical.items():
            out[column] = pd.Categorical(_as_category_values(df[column], categories), categories=categories)
        return pd.DataFrame(out, index=df.index, columns=self.features)

    def labels(self, df: Any, where: str = "the table") -> Any:
        """The label as an array (binary: int 0/1, multiclass: int class index, regression: float);
        BadInput if the table has none."""
        if self.label is None or self.label not in df.columns:
            raise BadInput(f"{where} has no label column {self.label!r}: a model step needs the data step's "
                           f"params.label to name the target column")
        if self.task == "multiclass":
            return self.class_index(df[self.label], where)
        return df[self.label].to_numpy(dtype="int64" if self.task == "binary" else "float64")

    def class_index(self, values: Any, where: str = "the table") -> Any:
        """Multiclass: each label value's index in `classes`; BadInput on a value training never saw."""
        import numpy as np
        import pandas as pd

        codes = pd.Categorical(_as_category_values(values, self.classes), categories=self.classes).codes
        unknown = (codes < 0) & values.notna().to_numpy()
        if unknown.any():
            raise BadInput(f"{where}: label column {self.label!r} holds {values[unknown].iloc[0]!r}, not one of the "
                           f"model's classes ({', '.join(map(repr, self.classes[:10]))})")
        return np.asarray(codes, dtype="int64")


def _as_category_values(series: Any, categories: list[Any]) -> Any:
    # A CSV read again may give 1.0 where training saw 1, or "1" where it saw 1: match on the
    # categories' own type so that the same value gets the same code.
    import pandas as pd

    if not categories or series.dtype == bool:
        return series
    if isinstance(categories[0], bool):
        return series.map(lambda v: v if pd.isna(v) else str(v).lower() in ("true", "1", "1.0"))
    if isinstance(categories[0], int):
        return pd.to_numeric(series, errors="coerce")
    if isinstance(categories[0], str):
        return series.map(lambda v: v if pd.isna(v) else _text(v))
    return series


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def infer(df: Any, *, label: str | None, id: str | None = None, task: str = "binary",
          categorical: list[str] | None = None, numeric: list[str] | None = None,
          max_int_categories: int = 10, max_categories: int = 100, where: str = "the table") -> TableSchema:
    """The schema of `df` by the rule in this module's docstring (`id`: None = the table has none)."""
    categorical, numeric = list(categorical or []), list(numeric or [])
    for name, listed in (("categorical", categorical), ("numeric", numeric)):
        for column in listed:
            if column not in df.columns:
                raise BadInput(f"{where}: params.{name} lists {column!r}, which is not a column "
                               f"(columns: {', '.join(map(str, df.columns))})")
            if column in (label, id):
                raise BadInput(f"{where}: params.{name} lists {column!r}, the {'label' if column == label else 'id'} "
                               f"column; drop it from the list")
    both = sorted(set(categorical) & set(numeric))
    if both:
        raise BadInput(f"{where}: column(s) {', '.join(map(repr, both))} are in both params.categorical and "
                       f"params.numeric; keep each in one")

    schema = TableSchema(task=task, label=label, id=id or ROW_ID)
    for column in df.columns:
        if column in (label, id):
            continue
        series = df[column]
        kind = _kind(series, column in categorical, column in numeric, max_int_categories, where)
        if kind == "numeric":
            schema.numeric.append(str(column))
        else:
            counts = series.dropna().value_counts(sort=True)
            if len(counts) > max_categories and len(counts) == series.notna().sum():
                raise BadInput(f"{where}: column {column!r} holds a different value in every row, like an id: "
                               f"set params.id: {column}, or leave it out (params.columns.exclude)")
            kept = counts.index[:max_categories].tolist()
            if len(counts) > max_categories:
                print(f"table.load: column {column!r} has {len(counts)} categories; keeping the {max_categories} "
                      f"most frequent (params.max_categories), the rest count as missing", flush=True)
            schema.categorical[str(column)] = sorted_plain(kept)
    if not schema.features:
        raise BadInput(f"{where} has no feature column besides the label and the id "
                       f"(columns: {', '.join(map(str, df.columns))})")
    return schema


def _kind(series: Any, declared_categorical: bool, declared_numeric: bool, max_int_categories: int,
          where: str) -> str:
    import pandas as pd
    from pandas.api import types

    if declared_categorical:
        return "categorical"
    if types.is_bool_dtype(series) or isinstance(series.dtype, pd.CategoricalDtype):
        return "categorical"
    if types.is_numeric_dtype(series):
        if declared_numeric:
            return "numeric"
        if types.is_integer_dtype(series) and series.nunique() <= max_int_categories:
            return "categorical"
        return "numeric"
    if types.is_string_dtype(series) or series.dtype == object:
        if declared_numeric:
            converted = pd.to_numeric(series, errors="coerce")
            if converted.isna().sum() > series.isna().sum():
                raise BadInput(f"{where}: column {series.name!r} is in params.numeric but holds non-numeric "
                               f"values; clean it or drop it from params.numeric")
            return "numeric"
        kinds = {type(v) for v in series.dropna().head(1000)}
        if kinds <= {str} or kinds <= {bool}:
            return "categorical"
    raise BadInput(f"{where}: column {series.name!r} has type {series.dtype}, neither numeric nor text; "
                   f"convert it or leave it out (params.columns.exclude)")


def sorted_plain(values: list[Any]) -> list[Any]:
    """Categories as JSON-plain Python values (no numpy scalars), in a stable sorted order."""
    plain = [v.item() if hasattr(v, "item") else v for v in values]
    try:
        return sorted(plain)
    except TypeError:  # mixed types: order by their text
        return sorted(plain, key=str)


def read_schema(manifest: dict[str, Any]) -> TableSchema:
    """The schema of a committed data step (table.load, features.synthetic)."""
    from workers import artifacts

    for shard in manifest.get("shards", []):
        if "schema" in shard:
            return TableSchema.model_validate(shard["schema"])
    uris = artifacts.step_output_uris(manifest, "schema")
    if not uris:
        raise BadInput(f"input step at {manifest.get('step_uri')} wrote no table schema: read tables with "
                       f"table.load or features.synthetic")
    return TableSchema.from_json(artifacts.read_bytes(uris[0]))
