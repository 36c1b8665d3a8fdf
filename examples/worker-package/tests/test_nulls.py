"""quality.nulls on a real table written by mlbatch's own features.synthetic step."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from workers import artifacts
from workers.errors import BadInput
from workers.request import StepRequest
from workers.runner import run


@pytest.fixture
def table_step(tmp_path):
    """A committed upstream step whose 'features' output has 2 missing values in 'age' (of 4 rows)."""
    output = str(tmp_path / "table")
    frame = pd.DataFrame({"age": [30, None, None, 41], "plan": ["a", "b", "a", "c"]})
    uri = artifacts.write_parquet(artifacts.join(artifacts.shard_dir(output, 0), "features.parquet"), frame)
    artifacts.write_shard_manifest(output, worker="table.load", shard_index=0, shard_count=1, try_number=1,
                                   params={}, counts={"rows": 4}, metrics={}, outputs={"features": uri},
                                   started_at=pd.Timestamp.now(tz="UTC").to_pydatetime())
    artifacts.commit_step(output, 1)
    return output


def test_reports_the_worst_column_as_a_metric_and_writes_a_report(table_step, tmp_path):
    output = str(tmp_path / "nulls")
    manifest = run(StepRequest("quality.nulls", {}, inputs={"table": table_step}, output=output))
    assert manifest["metrics"] == {"null_share": 0.5, "rows": 4}
    assert artifacts.read_json(manifest["outputs"]["nulls"]) == {"age": 0.5, "plan": 0.0}


def test_checks_only_the_columns_asked_for(table_step, tmp_path):
    request = StepRequest("quality.nulls", {"columns": ["plan"]}, inputs={"table": table_step},
                          output=str(tmp_path / "nulls"))
    assert run(request)["metrics"]["null_share"] == 0.0


def test_a_column_that_is_not_in_the_table_is_bad_input(table_step, tmp_path):
    request = StepRequest("quality.nulls", {"columns": ["agee"]}, inputs={"table": table_step},
                          output=str(tmp_path / "nulls"))
    with pytest.raises(BadInput, match="agee"):
        run(request)


def test_params_are_typed(tmp_path):
    with pytest.raises(BadInput, match="columns"):
        StepRequest("quality.nulls", {"columns": "age"}, output=str(tmp_path))


def test_reading_the_catalogue_imports_neither_pandas_nor_the_function():
    code = ("import sys, json; from workers.registry import WORKERS; WORKERS['quality.nulls'].params;"
            "print(json.dumps(['pandas' in sys.modules, 'mlbatch_quality.nulls' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [False, False]
