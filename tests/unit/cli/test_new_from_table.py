"""`mlbatch new NAME --source PATH --label COLUMN`: a lint-clean spec for the user's own table, its
task told by the label, its id column when one is obvious, GBDT + MLP + their stack + scoring."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from mlbatch.spec.lint import lint_file
from tests.unit.cli.test_project import make_project, run_mlbatch


def digits_csv(path: Path) -> Path:
    """scikit-learn's digits (64 pixel columns, label 0-9) with a customer-style id column."""
    from sklearn.datasets import load_digits

    df = load_digits(as_frame=True).frame
    df.insert(0, "image_id", [f"img{i:05d}" for i in range(len(df))])
    df.to_csv(path, index=False)
    return path


def new(root: Path, *args: str) -> tuple[dict, str]:
    done = run_mlbatch("new", "digits", *args, cwd=root / "notebooks")
    spec = root / "dags" / "specs" / "digits.yaml"
    return (yaml.safe_load(spec.read_text()) if spec.exists() else {}), done.stdout + done.stderr


def test_a_spec_for_the_users_table_lints_clean(tmp_path):
    root = make_project(tmp_path)
    (root / "data").mkdir()
    digits_csv(root / "data" / "digits.csv")
    spec, output = new(root, "--source", "../data/digits.csv", "--label", "target")
    assert spec["steps"]["data"]["params"] == {"source": "data/digits.csv", "label": "target",
                                               "task": "multiclass", "id": "image_id"}, output
    assert {name: step["run"] for name, step in spec["steps"].items()} == {
        "data": "table.load", "gbdt": "train.gbdt", "mlp": "train.mlp", "ensemble": "ensemble.stack",
        "score": "predict.batch"}
    lint = run_mlbatch("lint", cwd=root)
    assert "1 spec(s) checked, 0 error(s)" in lint.stdout, lint.stdout + lint.stderr


@pytest.mark.parametrize("label, task", [("churned", "binary"), ("spend", "regression"), ("plan", "multiclass")])
def test_the_task_comes_from_the_label(tmp_path, label, task):
    table = tmp_path / "customers.csv"
    pd.DataFrame({"customer": ["a", "b", "c", "a"], "churned": [0, 1, 0, 1], "spend": [1.5, 2.25, 3.0, 0.5],
                  "plan": ["basic", "pro", "team", "pro"]}).to_csv(table, index=False)
    root = make_project(tmp_path)
    spec, output = new(root, "--source", str(table), "--label", label)
    assert spec["steps"]["data"]["params"] == {"source": str(table), "label": label, "task": task}, output
    assert [p for p in lint_file(root / "dags" / "specs" / "digits.yaml", cpu_count=64) if p.severity == "error"] == []


def test_a_wrong_label_names_the_closest_column_and_writes_nothing(tmp_path):
    root = make_project(tmp_path)
    table = digits_csv(tmp_path / "digits.csv")
    spec, output = new(root, "--source", str(table), "--label", "targt")
    assert spec == {} and "--label 'targt' is not a column of" in output and "did you mean 'target'?" in output
    spec, output = new(root, "--source", str(table))
    assert spec == {} and "give --source and --label together" in output
