"""The task a label column asks for, when the data step does not say (params.task left out).

Pure Python (no pandas): `mlbatch lint` applies the same rule to the values it reads from a
CSV that table.load applies to the whole column, so both name the same task.

- two values, 0/1 or true/false -> binary;
- text, or whole numbers with at most MAX_CLASSES distinct values -> multiclass
  (two text values need params.positive to be binary: which one counts as 1 is the user's call);
- any other numbers -> regression.
"""
from __future__ import annotations

from typing import Any, Iterable

MAX_CLASSES = 50  # more distinct whole numbers than this is a count or an amount, not a class


def detect(values: Iterable[Any]) -> str:
    """binary, multiclass or regression for the non-missing label values `values`."""
    distinct = {_plain(v) for v in values if not _missing(v)}
    if distinct <= {0, 1} or distinct <= {"0", "1"} or {str(v).lower() for v in distinct} <= {"true", "false"}:
        return "binary"
    numbers = [_number(v) for v in distinct]
    if any(n is None for n in numbers):
        return "multiclass"
    if all(float(n).is_integer() for n in numbers) and len(numbers) <= MAX_CLASSES:
        return "multiclass"
    return "regression"


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and value != value)


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
