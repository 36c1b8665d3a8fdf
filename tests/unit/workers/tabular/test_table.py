"""table.load: any CSV/Parquet table, its schema in the manifest, and bad input naming the column."""
from __future__ import annotations

import pandas as pd
import pytest

from tests.unit.workers.steps import run_step
from tests.unit.workers.tabular.tables import loans, write_csv
from workers import artifacts
from workers.errors import BadInput
from workers.request import StepRequest
from workers.tabular import table
from workers.tabular.schema import TableSchema, read_schema


def _load(tmp_path, **params) -> StepRequest:
    return StepRequest("table.load", params, output=str(tmp_path / "table"))


def test_a_csv_with_its_own_columns_loads_with_its_schema(tmp_path):
    source = write_csv(tmp_path, loans().drop(columns=["loan"]))
    step = run_step(tmp_path, "table", "table.load", params={"source": source, "label": "target"})
    manifest = artifacts.read_step_manifest(step)
    schema = read_schema(manifest)
    assert schema.id == "row_id" and schema.label == "target"
    assert schema.numeric == ["income", "age"] and list(schema.categorical) == ["grade", "branch", "owner"]
    assert TableSchema.from_json(artifacts.read_bytes(manifest["shards"][0]["outputs"]["schema"])) == schema
    df = pd.read_parquet(manifest["shards"][0]["outputs"]["features"])
    assert list(df.columns) == ["row_id", *schema.features, "target"] and df["row_id"].tolist() == list(range(600))
    assert manifest["counts"] == {"rows": 600, "columns": 7, "positives": int(loans()["target"].sum())}


def test_columns_id_positive_and_unlabelled_rows(tmp_path, capsys):
    df = loans()
    df["target"] = df["target"].map({0: "no", 1: "yes"})
    df.loc[:9, "target"] = None
    source = str(tmp_path / "loans.parquet")
    df.to_parquet(source)
    result = table.load(_load(tmp_path, source=source, label="target", id="loan", positive="yes",
                              columns={"exclude": ["age", "owner"]}))
    out = pd.read_parquet(result.outputs["features"])
    assert list(out.columns) == ["loan", "income", "grade", "branch", "target"]
    assert len(out) == 590 and out["target"].tolist() == (df["target"][10:] == "yes").astype(int).tolist()
    assert result.counts["unlabelled_dropped"] == 10 and "10 rows without a label dropped" in capsys.readouterr().out
    kept = table.load(_load(tmp_path, source=source, id="loan", columns={"include": ["income"]}))
    assert kept.extra["schema"]["numeric"] == ["income"] and kept.extra["schema"]["categorical"] == {}


def test_regression_label(tmp_path):
    df = loans().assign(amount=lambda d: d["income"].fillna(0) * 3)
    source = write_csv(tmp_path, df.drop(columns=["target"]))
    result = table.load(_load(tmp_path, source=source, label="amount", id="loan", task="regression"))
    assert result.extra["schema"]["task"] == "regression" and "positives" not in result.counts


@pytest.mark.parametrize("params, content, message", [
    ({"label": "churn"}, None, "has no label column 'churn' (params.label); columns: loan, income"),
    ({"label": "age", "task": "binary"}, None, "label column 'age' is not binary (values: "),
    ({"label": "grade", "task": "regression"}, None, "label column 'grade' holds non-numeric values"),
    ({"label": "target", "positive": "yes"}, None, "params.positive 'yes' never occurs in label column 'target'"),
    ({"label": "target", "id": "branch"}, None, "id column 'branch' has missing or duplicate values"),
    ({"label": "target", "columns": {"exclude": ["colour"]}}, None, "params.columns.exclude names 'colour'"),
    ({"label": "target", "categorical": ["colour"]}, None, "params.categorical lists 'colour'"),
    ({"label": "target"}, "loan,target\n", "is empty: no rows (columns: loan, target)"),
    ({"label": "target"}, "", "is empty: no rows"),
    ({"label": "target"}, "a,b\n1,2,3,4\n\"x", "is unreadable"),
])
def test_bad_input_names_the_column_and_the_fix(tmp_path, params, content, message):
    if content is None:
        source = write_csv(tmp_path, loans())
    else:
        (tmp_path / "loans.csv").write_text(content)
        source = str(tmp_path / "loans.csv")
    with pytest.raises(BadInput) as info:
        table.load(_load(tmp_path, source=source, **params))
    assert message in str(info.value) and source in str(info.value)
    assert not (tmp_path / "table").exists()


def test_a_label_of_one_class_and_a_missing_file(tmp_path):
    source = write_csv(tmp_path, loans().assign(target=0))
    with pytest.raises(BadInput, match="label column 'target' has one class only"):
        table.load(_load(tmp_path, source=source, label="target"))
    with pytest.raises(BadInput, match="absent.parquet does not exist"):
        table.load(_load(tmp_path, source=str(tmp_path / "absent.parquet")))


def test_include_and_exclude_together_is_a_params_error(tmp_path):
    with pytest.raises(BadInput, match="columns.include or columns.exclude, not both"):
        _load(tmp_path, source="x.csv", columns={"include": ["a"], "exclude": ["b"]})
