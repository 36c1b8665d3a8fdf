"""Specs without loaders and loaders without specs: lint errors with the fix, and a clear import error."""
from __future__ import annotations

from pathlib import Path

import pytest

from mlbatch.cli.main import main
from mlbatch.cli.scaffold import create_batch, create_loader, loader_source
from mlbatch.spec.lint import lint_paths
from mlbatch.spec.orphans import loaders_in

GOOD = "steps:\n  a: {run: check.noop}\n"


@pytest.fixture(autouse=True)
def _no_backend_override(monkeypatch):
    monkeypatch.delenv("MLBATCH_BACKEND", raising=False)


@pytest.fixture
def dags(tmp_path) -> Path:
    (tmp_path / "dags" / "specs").mkdir(parents=True)
    return tmp_path / "dags"


def spec(dags: Path, name: str, suffix: str = ".yaml") -> Path:
    path = dags / "specs" / f"{name}{suffix}"
    path.write_text(GOOD)
    return path


def loader(dags: Path, name: str, source: str | None = None) -> Path:
    path = dags / f"{name}.py"
    path.write_text(source if source is not None else loader_source(name))
    return path


def test_paired_specs_and_loaders_are_clean(dags):
    spec(dags, "one"), loader(dags, "one")
    spec(dags, "two", ".yml"), loader(dags, "two", loader_source("two", "two.yml"))
    assert lint_paths([dags / "specs"], cpu_count=64) == []


def test_spec_without_loader_is_an_error_with_the_command_that_fixes_it(dags):
    lonely = spec(dags, "lonely")
    [problem] = lint_paths([dags / "specs"], cpu_count=64)
    assert (problem.file, problem.severity) == (str(lonely), "error")
    assert "Airflow never shows this batch" in problem.message
    assert problem.fix.startswith("mlbatch new --loader-only lonely")
    # the fix works: after it, lint is clean and the loader names the spec
    assert create_loader(dags, "lonely") == [dags / "lonely.py"]
    assert 'build_dag(__file__, "specs/lonely.yaml")' in (dags / "lonely.py").read_text()
    assert lint_paths([dags / "specs"], cpu_count=64) == []


def test_a_single_spec_file_is_checked_for_its_loader_too(dags):
    lonely = spec(dags, "lonely")
    assert [p.file for p in lint_paths([lonely], cpu_count=64)] == [str(lonely)]


def test_loader_whose_spec_is_gone_is_an_error_naming_the_loader(dags):
    spec(dags, "kept"), loader(dags, "kept")
    stale = loader(dags, "retired")
    [problem] = lint_paths([dags / "specs"], cpu_count=64)
    assert problem.file == str(stale) and problem.severity == "error"
    assert problem.message == f"loads specs/retired.yaml, but {dags / 'specs' / 'retired.yaml'} does not exist"
    assert f"delete {stale}" in problem.fix


def test_loaders_are_read_without_being_imported(dags):
    spec(dags, "x")
    loader(dags, "x", 'raise SystemExit("imported!")\nimport mlbatch.run.factory as f\n'
                      'dag = f.build_dag(__file__, spec_relpath="specs/x.yaml")\n')
    (dags / "helpers.py").write_text("VALUE = 1\n")  # not a loader
    (dags / "broken.py").write_text("def build_dag(:\n")  # Airflow reports it; lint skips it
    assert [(p.path.name, p.spec_relpath) for p in loaders_in(dags)] == [("x.py", "specs/x.yaml")]
    assert lint_paths([dags / "specs"], cpu_count=64) == []


def test_a_computed_spec_path_is_a_warning(dags):
    spec(dags, "x"), loader(dags, "x")
    loader(dags, "dynamic", 'from mlbatch.run.factory import build_dag\nNAME = "x"\n'
                            'dag = build_dag(__file__, f"specs/{NAME}.yaml")\n')
    [problem] = lint_paths([dags / "specs"], cpu_count=64)
    assert problem.severity == "warning" and problem.file == str(dags / "dynamic.py")


def test_folders_not_named_specs_are_not_checked_for_loaders(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    assert lint_paths([tmp_path], cpu_count=64) == []


def test_cli_lint_exits_1_on_an_orphan(dags, capsys):
    spec(dags, "lonely")
    assert main(["lint", str(dags / "specs")]) == 1
    out = capsys.readouterr().out
    assert "Fix: mlbatch new --loader-only lonely" in out
    assert out.strip().splitlines()[-1] == "1 spec(s) checked, 1 error(s), 0 warning(s)"


def test_cli_new_loader_only(dags, capsys):
    spec(dags, "lonely")
    assert main(["new", "--loader-only", "lonely", "--dags", str(dags)]) == 0
    assert capsys.readouterr().out == f"wrote {dags / 'lonely.py'}\n"
    assert main(["new", "--loader-only", "lonely", "--dags", str(dags)]) == 1  # never overwrites
    assert "already exists" in capsys.readouterr().err
    assert main(["new", "--loader-only", "nothing", "--dags", str(dags)]) == 1
    assert "mlbatch new nothing" in capsys.readouterr().err
    assert main(["new", "--loader-only", "../lonely", "--dags", str(dags)]) == 1


def test_new_still_writes_both_and_they_pair(dags):
    written = create_batch(dags, "fresh")
    assert written == [dags / "specs" / "fresh.yaml", dags / "fresh.py"]
    assert [p for p in lint_paths([dags / "specs"], cpu_count=64) if p.severity == "error"] == []


def test_missing_spec_import_error_names_the_loader_and_the_fix(dags):
    from airflow.dag_processing.dagbag import DagBag

    spec(dags, "kept"), loader(dags, "kept")
    stale = loader(dags, "retired")
    bag = DagBag(dag_folder=str(dags))
    assert bag.dag_ids == ["kept"]  # the other batch still loads
    error = bag.import_errors[str(stale)]
    assert f"MissingSpecError: {stale}: loads specs/retired.yaml, but " in error
    assert f"Fix: restore {dags / 'specs' / 'retired.yaml'}" in error and f"delete {stale}" in error
