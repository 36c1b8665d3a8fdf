"""Every DAG file imports, every DAG is well formed, and parsing stays cheap."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.airflow_run import write_batch

PROJECT = Path(__file__).resolve().parents[2]
DAGS = PROJECT / "dags"
MAINTENANCE = {"mlbatch_sweeper"}  # DAGs of mlbatch itself, not built from a spec
HEAVY = ["torch", "sklearn", "pandas", "boto3", "pyarrow", "botocore", "mlflow", "matplotlib"]


def _dagbag(folder: Path):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(folder))


def test_every_dag_file_imports_without_errors():
    bag = _dagbag(DAGS)
    assert bag.import_errors == {}
    loaders = sorted(p.stem for p in DAGS.glob("*.py"))
    assert sorted(bag.dag_ids) == loaders  # one DAG per loader, named after its spec


@pytest.mark.parametrize("loader", sorted(p.name for p in DAGS.glob("*.py")))
def test_dag_has_owner_retries_tags_and_docs(loader):
    bag = _dagbag(DAGS)
    dag = bag.dags[Path(loader).stem]
    assert ("mlbatch-maintenance" if dag.dag_id in MAINTENANCE else "mlbatch") in dag.tags
    assert dag.doc_md
    for task in dag.tasks:
        assert task.owner not in ("", "airflow")
        assert task.retries >= 1
        assert task.execution_timeout is not None


def test_every_asset_a_batch_waits_for_is_emitted_by_a_step_of_another_batch():
    bag = _dagbag(DAGS)
    emitted = {outlet: dag.dag_id for dag in bag.dags.values() for task in dag.tasks for outlet in task.outlets}
    awaited = {dag.dag_id: dag.timetable.asset_condition.objects
               for dag in bag.dags.values() if getattr(dag.timetable, "asset_condition", None) is not None}
    assert [a.name for a in awaited["churn_scoring"]] == ["churn_training.ensemble (output)"]  # scoring follows training
    for dag_id, assets in awaited.items():
        for asset in assets:
            assert emitted.get(asset) not in (None, dag_id), f"{dag_id} waits for {asset.name}: no other batch emits it"


def test_every_spec_has_a_loader():
    specs = {p.stem for p in (DAGS / "specs").glob("*.yaml")}
    loaders = {p.stem for p in DAGS.glob("*.py")} - MAINTENANCE
    assert specs == loaders


# Every parse of every loader imports these again (the dag-processor forks a fresh process per
# parse, holding only Airflow's own modules): a module joins this list only on purpose.
PARSE_TIME_MODULES = {
    "mlbatch", "mlbatch.backends", "mlbatch.backends.traits", "mlbatch.project", "mlbatch.run", "mlbatch.run.assets", "mlbatch.run.factory",
    "mlbatch.run.operator", "mlbatch.run.paths", "mlbatch.alerts", "mlbatch.alerts.slack",
    "mlbatch.spec", "mlbatch.spec.bounded_yaml", "mlbatch.spec.checks", "mlbatch.spec.commands", "mlbatch.spec.fields",
    "mlbatch.spec.folder",
    "mlbatch.spec.folder_index", "mlbatch.spec.gates", "mlbatch.spec.loader", "mlbatch.spec.models",
    "mlbatch.spec.problems", "mlbatch.spec.schedules", "mlbatch.spec.tasks", "mlbatch.spec.units",
    "mlbatch.spec.upstream", "mlbatch.provider", "mlbatch.ui", "mlbatch.ui.link", "workers", "workers.catalogue",
    "workers.info", "workers.params", "workers.params_base", "workers.registry", "workers.text", "workers.text.params",
}


@pytest.mark.parametrize("loader", sorted(p.name for p in DAGS.glob("*.py")))
def test_parsing_imports_no_heavy_library_and_only_the_parse_time_modules(loader):
    code = (
        "import runpy, sys, json; runpy.run_path(sys.argv[1]);"
        f"print(json.dumps([[m for m in {HEAVY!r} if m in sys.modules],"
        " sorted(m for m in sys.modules if m.split('.')[0] in ('mlbatch', 'workers'))]))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(DAGS / loader)], check=True,
                         capture_output=True, text=True, cwd=PROJECT)
    heavy, ours = json.loads(out.stdout.strip().splitlines()[-1])
    assert heavy == []
    assert set(ours) - PARSE_TIME_MODULES == set()
    assert "mlbatch.spec.loader" in ours or Path(loader).stem in MAINTENANCE  # it did parse through mlbatch


def test_a_broken_spec_breaks_only_its_own_dag(tmp_path):
    write_batch(tmp_path, "good_batch", """
        steps:
          only: {run: check.noop}
    """)
    write_batch(tmp_path, "broken_batch", """
        steps:
          only: {run: check.noop, needz: [other]}
    """)
    bag = _dagbag(tmp_path)
    assert bag.dag_ids == ["good_batch"]
    [(path, message)] = bag.import_errors.items()
    assert path.endswith("broken_batch.py")
    assert "broken_batch.yaml" in message
    assert "needz" in message and "did you mean 'needs'" in message


def test_a_batch_of_a_worker_package_parses_without_its_function_or_heavy_libraries(tmp_path):
    """Only the package's catalogue and params model are read at parse (pandas is in its function)."""
    from tests.worker_packages import example_installed

    write_batch(tmp_path, "quality_batch", """
        steps:
          features: {run: features.synthetic, params: {rows: 100}}
          nulls: {run: quality.nulls, needs: [features], gate: {metric: null_share, max: 0.1}}
    """)
    code = ("import runpy, sys, json; runpy.run_path(sys.argv[1]);"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('mlbatch_quality', 'pandas'))))")
    with example_installed():  # the parse's own process finds it through PYTHONPATH
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "quality_batch.py")], check=True,
                             capture_output=True, text=True, cwd=PROJECT)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [
        "mlbatch_quality", "mlbatch_quality.catalogue", "mlbatch_quality.params"]


def test_a_worker_package_that_fails_to_import_breaks_only_the_batches_that_use_it(tmp_path, monkeypatch):
    from tests.worker_packages import write_distribution
    from workers.registry import WORKERS

    site = write_distribution(tmp_path / "site", "team-broken", {"team.broken": "team_broken:W"},
                              {"team_broken": "import not_installed_anywhere\n"})
    monkeypatch.syspath_prepend(str(site))
    WORKERS.refresh()
    dags = tmp_path / "dags"
    write_batch(dags, "good_batch", """
        steps:
          only: {run: check.noop}
    """)
    write_batch(dags, "team_batch", """
        steps:
          only: {run: team.broken}
    """)
    try:
        bag = _dagbag(dags)
    finally:
        WORKERS.refresh()
    assert bag.dag_ids == ["good_batch"]
    [(path, message)] = bag.import_errors.items()
    assert path.endswith("team_batch.py") and "team_batch.yaml" in message
    assert "entry point 'team.broken = team_broken:W' of distribution 'team-broken'" in message
    assert "No module named 'not_installed_anywhere'" in message
