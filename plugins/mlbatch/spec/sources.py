"""Lint of a data step's source: the file exists, and its label, id and columns are in its header.

Only `mlbatch lint` calls this, never the DAG loader: reading a file (maybe over the network)
has no place in DAG parsing. A CSV costs its first line, a Parquet file its footer. A relative
path is relative to the project root, where `mlbatch demo` runs the batches.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from mlbatch.spec.checks import SHORTLIST, Issue, did_you_mean, shortlist

SOURCE_WORKERS = ("table.load",)  # workers whose params name a table source, a label and columns


def source_issues(data: Any, base: Path | None = None) -> tuple[list[Issue], list[Issue]]:
    """(errors, warnings) of every data step's source in the spec mapping `data` (as read from YAML:
    checked even when other fields are wrong, so one lint run says everything); a source that cannot
    be read is a warning. `base`: the folder a relative path is relative to (default: the working directory)."""
    from workers.tabular.source import header, is_table, missing_source

    errors: list[Issue] = []
    warnings: list[Issue] = []
    detected: dict[str, str] = {}
    for name, step in _data_steps(data):
        source = step["params"].get("source")
        if not isinstance(source, str) or not is_table(source):
            continue
        where = ("steps", name, "params", "source")
        located = str(base / source) if base is not None and "://" not in source and not Path(source).is_absolute() \
            else source
        try:
            columns = header(located)
        except FileNotFoundError:
            errors.append(Issue(where, missing_source(located), "point params.source at the table's file or URI"))
            continue
        except Exception as error:  # noqa: BLE001 - unreachable store, no credentials: the run will say more
            warnings.append(Issue(where, f"could not read the header of {source} ({type(error).__name__}: {error}); "
                                         "label and columns were not checked", None))
            continue
        errors += _column_issues(name, step["params"], source, columns)
        label = step["params"].get("label")
        if step["params"].get("task") is None and step["params"].get("positive") is None and label in columns:
            detected[name] = _label_task(located, label)
    return errors + detected_task_issues(data, detected), warnings


def _data_steps(data: Any) -> list[tuple[str, dict[str, Any]]]:
    steps = data.get("steps") if isinstance(data, dict) else None
    return [(name, step) for name, step in (steps.items() if isinstance(steps, dict) else [])
            if isinstance(step, dict) and step.get("run") in SOURCE_WORKERS and isinstance(step.get("params"), dict)]


def _label_task(source: str, label: str) -> str:
    from workers.tabular.label_task import detect
    from workers.tabular.source import label_values

    return detect(label_values(source, label))


def detected_task_issues(data: dict[str, Any], detected: dict[str, str]) -> list[Issue]:
    """Task and gate problems that only the label's values reveal (params.task left out): those the
    spec shows once each data step's task is the one its label tells, and not without it."""
    from mlbatch.spec.gates import gate_issues
    from mlbatch.spec.tasks import task_issues

    if not detected:
        return []
    data = copy.deepcopy(data)
    before = {(issue.loc, issue.message) for issue in gate_issues(data) + task_issues(data)}
    for name, task in detected.items():
        data["steps"][name].setdefault("params", {})["task"] = task
    return [issue for issue in gate_issues(data) + task_issues(data) if (issue.loc, issue.message) not in before]


def _column_issues(step: str, params: dict[str, Any], source: str, columns: list[str]) -> list[Issue]:
    """Every column the params name that the header lacks, with the closest column as the fix."""
    named: list[tuple[tuple[str | int, ...], str, str]] = []  # (where, what, column)
    for field in ("label", "id"):
        if isinstance(params.get(field), str):
            named.append(((field,), f"{field} column", params[field]))
    selection = params.get("columns") if isinstance(params.get("columns"), dict) else {}
    for field in ("include", "exclude"):
        named += [(("columns", field, i), f"column in columns.{field}", c)
                  for i, c in enumerate(selection.get(field) or []) if isinstance(c, str)]
    for field in ("categorical", "numeric"):
        named += [((field, i), f"column in {field}", c) for i, c in enumerate(params.get(field) or [])
                  if isinstance(c, str)]
    issues = []
    for where, what, column in named:
        if column in columns:
            continue
        hint = did_you_mean(column, columns, f"the columns of {source}")
        many = len(columns) > SHORTLIST
        shown = f"{'closest of its ' + str(len(columns)) + ' ' if many else ''}columns: {shortlist(column, columns) or 'none'}"
        issues.append(Issue(("steps", step, "params", *where), f"{what} {column!r} is not a column of {source} "
                            f"({shown})", hint))
    return issues
