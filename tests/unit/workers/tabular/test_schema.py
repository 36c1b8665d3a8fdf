"""Table schemas: type inference, the model input they build, and the shared folds."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.unit.workers.tabular.tables import loans
from workers.errors import BadInput
from workers.tabular import folds
from workers.tabular.schema import TableSchema, infer


def test_strings_bools_and_few_distinct_ints_are_categorical_with_gaps_allowed():
    schema = infer(loans(), label="target", id="loan")
    assert schema.numeric == ["income", "age"]
    assert schema.categorical == {"grade": ["A", "B", "C", "D"], "branch": [1, 2, 3, 4], "owner": [False, True]}
    assert (schema.label, schema.id, schema.task) == ("target", "loan", "binary")
    assert schema.features == ["income", "age", "grade", "branch", "owner"]


def test_explicit_lists_and_the_int_threshold_decide():
    df = loans()
    assert "branch" in infer(df, label="target", id="loan", max_int_categories=3).numeric
    forced = infer(df, label="target", id="loan", categorical=["age"], numeric=["branch"])
    assert forced.categorical["age"][:3] == [18, 19, 20] and "branch" in forced.numeric


def test_a_table_without_an_id_gets_row_id_and_rare_categories_are_cut():
    df = pd.DataFrame({"city": ["x"] * 5 + ["y"] * 3 + ["z"], "target": [0, 1] * 4 + [1]})
    schema = infer(df, label="target", max_categories=2)
    assert schema.id == "row_id" and schema.categorical == {"city": ["x", "y"]}


def test_an_id_like_text_column_is_refused_with_the_fix():
    with pytest.raises(BadInput, match="column 'loan' holds a different value in every row, like an id: set params.id"):
        infer(loans(), label="target")


def test_schema_round_trips_through_json():
    schema = infer(loans(), label="target", id="loan")
    assert TableSchema.from_json(schema.to_json()) == schema


def test_frame_gives_fixed_categories_and_floats_whatever_the_column_order():
    schema = infer(loans(), label="target", id="loan")
    new = pd.DataFrame({"owner": ["True", None], "branch": [2.0, 9.0], "grade": ["B", "Z"], "age": [30, 40],
                        "income": [None, 10], "extra": [1, 2]})  # as a CSV might give them back
    X = schema.frame(new)
    assert list(X.columns) == schema.features
    assert X["income"].dtype == "float64" and np.isnan(X["income"][0])
    assert list(X["grade"].cat.categories) == ["A", "B", "C", "D"]
    assert X["grade"].tolist()[0] == "B" and pd.isna(X["grade"][1])  # unknown -> missing
    assert X["branch"].cat.codes.tolist() == [1, -1] and X["owner"].cat.codes.tolist() == [1, -1]


def test_frame_names_a_missing_training_column():
    schema = infer(loans(), label="target", id="loan")
    with pytest.raises(BadInput, match=r"lacks the training column\(s\) 'grade'"):
        schema.frame(loans().drop(columns=["grade"]), where="the table")


def test_frame_refuses_text_in_a_numeric_column():
    schema = infer(loans(), label="target", id="loan")
    df = loans().astype({"income": object})
    df.loc[3, "income"] = "lots"
    with pytest.raises(BadInput, match="column 'income' is numeric in the model's schema"):
        schema.frame(df)


def test_unsupported_column_types_name_the_column():
    df = pd.DataFrame({"when": pd.to_datetime(["2024-01-01", "2024-01-02"]), "target": [0, 1]})
    with pytest.raises(BadInput, match="column 'when' has type datetime64.*columns.exclude"):
        infer(df, label="target")


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_folds_partition_rows_and_repeat_with_the_seed(task):
    y = np.random.default_rng(0).integers(0, 2, 100) if task == "binary" else np.arange(100.0)
    tests = [folds.split(y, i, 4, seed=7, task=task)[1] for i in range(4)]
    assert sorted(np.concatenate(tests).tolist()) == list(range(100))
    again = folds.split(y, 2, 4, seed=7, task=task)
    assert np.array_equal(again[1], tests[2]) and not set(again[0]) & set(again[1])
    assert not np.array_equal(folds.split(y, 2, 4, seed=8, task=task)[1], tests[2])
    train, test = folds.split(y, 0, 1, seed=7, task=task)
    assert (len(train), len(test)) == (80, 20)


def test_too_few_rows_for_the_folds_is_bad_input():
    with pytest.raises(BadInput, match="cannot split 3 rows into 5 stratified fold"):
        folds.split(np.array([0, 1, 0]), 0, 5, seed=1)
