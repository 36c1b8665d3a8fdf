"""The example Python DAG (examples/python-dag) parses light, wires as its docs say, and its functions run."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.dags.test_dag_integrity import HEAVY, PARSE_TIME_MODULES
from workers.python_call import Shard
from workers.request import StepRequest
from workers.runner import run
from workers.step_output import StepOutput

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "python-dag"
# what a DAG of @step functions adds to a spec loader's parse: the sdk, and python.call's params model
SDK_PARSE_MODULES = {"mlbatch.sdk", "mlbatch.sdk.dag_step", "mlbatch.sdk.decorator", "mlbatch.sdk.errors",
                     "mlbatch.sdk.operator", "mlbatch.sdk.reference", "workers.call_params"}


def test_the_example_dag_parses_into_plain_tasks_and_steps(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.syspath_prepend(str(EXAMPLE))
    bag = DagBag(dag_folder=str(EXAMPLE))
    assert bag.import_errors == {}
    dag = bag.dags["churn_profile"]
    assert sorted(dag.task_dict) == ["column_profile", "drift_alarm", "published_features", "show"]
    assert dag.task_dict["drift_alarm"].step.needs == ("column_profile",)
    assert [a.name for a in dag.timetable.asset_condition.objects] == ["churn_training.features (output)"]
    assert all(t.owner == "ml-platform" and t.retries >= 1 for t in dag.tasks if hasattr(t, "step"))


def test_parsing_the_example_imports_no_heavy_library_and_only_the_sdk_beyond_a_loaders_modules():
    code = ("import runpy, sys, json; runpy.run_path(sys.argv[1]);"
            f"print(json.dumps([[m for m in {HEAVY!r} if m in sys.modules],"
            " sorted(m for m in sys.modules if m.split('.')[0] in ('mlbatch', 'workers'))]))")
    out = subprocess.run([sys.executable, "-c", code, str(EXAMPLE / "churn_profile.py")], check=True,
                         capture_output=True, text=True, cwd=EXAMPLE)
    heavy, ours = json.loads(out.stdout.strip().splitlines()[-1])
    assert heavy == []
    assert set(ours) - PARSE_TIME_MODULES - SDK_PARSE_MODULES == set()


def test_the_example_functions_profile_a_real_features_table(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from churn_profile_steps import column_profile, drift_alarm

    features = str(tmp_path / "features")
    run(StepRequest("features.synthetic", {"rows": 300}, {}, features))
    StepOutput(features).commit(1)
    parts = [column_profile.function(features, shard=Shard(i, 2, str(tmp_path / f"s{i}"))) for i in range(2)]
    assert set(parts[0]).isdisjoint(parts[1]) and "tenure_months" in {**parts[0], **parts[1]}
    alarm = drift_alarm.function(parts, baseline={"tenure_months": 1000.0})
    assert alarm == {"columns": len(parts[0]) + len(parts[1]), "moved": ["tenure_months"]}
