"""Lint reads a data step's source header: a wrong label, id or column, or a missing file, is caught
before anything runs, with "did you mean"."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlbatch.spec.lint import lint_file
from workers.errors import BadInput
from workers.request import StepRequest
from workers.runner import run

SPEC = """
steps:
  data:
    run: table.load
    params: {{source: {source}, label: {label}, id: application_id{extra}}}
  gbdt: {{run: train.gbdt, needs: [data], shards: 2}}
"""
COLUMNS = "application_id,income,branch_code,defaulted\n"


def lint(tmp_path: Path, source: str, label: str = "defaulted", extra: str = "") -> list[str]:
    spec = tmp_path / "loans.yaml"
    spec.write_text(SPEC.format(source=source, label=label, extra=extra))
    return [f"{p.severity} {p.field}: {p.message} Fix: {p.fix}" for p in lint_file(spec, cpu_count=64)]


@pytest.fixture
def csv(tmp_path) -> Path:
    path = tmp_path / "applications.csv"
    path.write_text(COLUMNS + "1,100,a,0\n2,200,b,1\n")
    return path


def test_a_right_source_lints_clean(tmp_path, csv):
    assert lint(tmp_path, str(csv)) == []


def test_a_wrong_label_names_the_right_column(tmp_path, csv):
    assert lint(tmp_path, str(csv), label="default") == [
        f"error steps.data.params.label: label column 'default' is not a column of {csv} "
        "(columns: application_id, income, branch_code, defaulted) Fix: did you mean 'defaulted'?"]


def test_columns_categorical_and_numeric_are_checked_too(tmp_path, csv):
    problems = lint(tmp_path, str(csv), extra=", columns: {exclude: [incme]}, categorical: [branch]")
    assert [p.split(":")[0] for p in problems] == ["error steps.data.params.columns.exclude[0]",
                                                   "error steps.data.params.categorical[0]"]
    assert problems[0].endswith("did you mean 'income'?") and problems[1].endswith("did you mean 'branch_code'?")


def test_a_parquet_header_is_its_schema(tmp_path):
    path = tmp_path / "applications.parquet"
    pd.DataFrame({"application_id": [1], "income": [1.0], "defaulted": [0]}).to_parquet(path)
    assert lint(tmp_path, str(path)) == []
    assert "did you mean 'defaulted'" in lint(tmp_path, str(path), label="defaultd")[0]


def test_a_missing_source_names_close_files_in_its_folder(tmp_path, csv):
    problems = lint(tmp_path, str(tmp_path / "aplications.csv"))
    assert problems == [f"error steps.data.params.source: source {tmp_path / 'aplications.csv'} does not exist; "
                        f"did you mean 'applications.csv' (in {tmp_path})? Fix: point params.source at the table's "
                        "file or URI"]


def test_a_missing_folder_says_so(tmp_path):
    assert "nor does its folder" in lint(tmp_path, str(tmp_path / "nowhere" / "a.csv"))[0]


def test_the_worker_says_the_same_about_a_missing_source(tmp_path, csv):
    with pytest.raises(BadInput, match=r"does not exist; did you mean 'applications.csv'"):
        run(StepRequest("table.load", {"source": str(tmp_path / "applications.cvs.csv"), "label": "defaulted"}, {},
                        str(tmp_path / "out")))


GATED = """
steps:
  data:
    run: table.load
    params: {{source: {source}, label: {label}}}
  ensemble: {{run: ensemble.average, needs: [gbdt], gate: {{metric: {metric}, min: 0.5}}}}
  gbdt: {{run: train.gbdt, needs: [data], shards: 2}}
"""


def lint_gated(tmp_path: Path, source: Path, label: str, metric: str) -> list[str]:
    spec = tmp_path / "gated.yaml"
    spec.write_text(GATED.format(source=source, label=label, metric=metric))
    return [f"{p.severity} {p.field}: {p.message}" for p in lint_file(spec, cpu_count=64)]


@pytest.fixture
def grades(tmp_path) -> Path:
    path = tmp_path / "grades.csv"
    pd.DataFrame({"x": range(9), "grade": ["A", "B", "C"] * 3, "score": [0.5, 1.25, 2.0] * 3}).to_csv(path, index=False)
    return path


def test_lint_tells_the_task_from_the_label_values_and_checks_gates_on_it(tmp_path, grades):
    assert lint_gated(tmp_path, grades, "grade", "auc") == []  # multiclass: macro AUC
    assert lint_gated(tmp_path, grades, "grade", "rmse") == [
        "error steps.ensemble.gate.metric: worker 'ensemble.average' reports no metric 'rmse' on a multiclass table"]
    assert lint_gated(tmp_path, grades, "score", "auc") == [
        "error steps.ensemble.gate.metric: worker 'ensemble.average' reports no metric 'auc' on a regression table"]
