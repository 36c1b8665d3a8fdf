"""Workers are found through the entry-point group mlbatch.workers: the project's own catalogue
and any installed distribution's, read lazily, a broken package failing only its own workers."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mlbatch.spec.lint import lint_file
from tests.worker_packages import write_distribution
from workers import catalogue
from workers.registry import GROUP, SOURCE_FOLDER, WORKERS, WorkerLoadError, declarations, get_worker

ROOT = Path(__file__).resolve().parents[3]

TEAM_CATALOGUE = """
    from workers.info import WorkerInfo
    SCORE = WorkerInfo("team.score", "team_workers.score:score", "team_workers.params:ScoreParams",
                       "a team's scorer", metrics=("auc",))
"""
TEAM_PARAMS = """
    from pydantic import Field
    from workers.params_base import Params
    class ScoreParams(Params):
        threshold: float = Field(0.5, ge=0, le=1)
"""


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Install distributions into a folder on sys.path for this test; forget them afterwards."""
    def install(name: str, entries: dict[str, str], modules: dict[str, str]) -> None:
        folder = write_distribution(tmp_path / name, name, entries, modules)
        monkeypatch.syspath_prepend(str(folder))
        WORKERS.refresh()

    yield install
    WORKERS.refresh()


@pytest.fixture
def team(installed):
    installed("team-workers", {"team.score": "team_workers.catalogue:SCORE"},
              {"team_workers.__init__": "", "team_workers.catalogue": TEAM_CATALOGUE,
               "team_workers.params": TEAM_PARAMS, "team_workers.score": "raise RuntimeError('never imported')"})


def lint(tmp_path: Path, steps: str) -> list[str]:
    path = tmp_path / "batch.yaml"
    path.write_text("steps:\n" + steps)
    return [f"{p.field}: {p.message} Fix: {p.fix}" for p in lint_file(path, cpu_count=64) if p.severity == "error"]


def test_pyproject_declares_exactly_the_catalogue():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][GROUP]
    assert declared == catalogue.ENTRY_POINTS
    assert len(declared) == 17 and declared["check.noop"] == "workers.catalogue:CHECK_NOOP"


def test_a_package_worker_is_listed_linted_and_typed_without_importing_its_function(tmp_path, team):
    assert "team.score" in WORKERS and get_worker("team.score").reported() == ("auc",)
    assert lint(tmp_path, "  s: {run: team.score, params: {threshold: 0.7}}\n") == []
    assert lint(tmp_path, "  s: {run: team.score, params: {treshold: 0.7}}\n") == [
        "steps.s.params.treshold: unknown param 'treshold' for worker 'team.score' Fix: did you mean 'threshold'?"]
    assert "team_workers.score" not in sys.modules  # its function: imported only when a shard runs


def test_did_you_mean_covers_every_installed_package(tmp_path, team):
    [problem] = lint(tmp_path, "  s: {run: team.scor}\n")
    assert problem.startswith("steps.s.run: unknown worker 'team.scor' Fix: did you mean 'team.score'?")
    [far] = lint(tmp_path, "  s: {run: team.zzzz}\n")  # nothing close: the closest of every package's workers
    assert "use one of the closest workers: team.score, " in far


def test_a_gate_reads_the_metrics_a_package_declares(tmp_path, team):
    assert lint(tmp_path, "  s: {run: team.score, gate: {metric: auc, min: 0.8}}\n") == []
    [problem] = lint(tmp_path, "  s: {run: team.score, gate: {metric: rmse, max: 1}}\n")
    assert "reports no metric 'rmse'" in problem


def test_a_package_that_fails_to_import_is_one_error_naming_it_and_the_others_still_lint(tmp_path, installed):
    installed("broken-team", {"team.broken": "broken_team.catalogue:BROKEN"},
              {"broken_team.__init__": "", "broken_team.catalogue": "import not_installed_anywhere\n"})
    assert lint(tmp_path, "  s: {run: team.broken}\n") == [
        "steps.s.run: worker 'team.broken' cannot be loaded: entry point 'team.broken = broken_team.catalogue:BROKEN' "
        "of distribution 'broken-team' raised ModuleNotFoundError: No module named 'not_installed_anywhere' "
        "Fix: fix 'broken-team' and reinstall it (pip install -e <its folder>), or uninstall it (pip uninstall broken-team)"]
    assert lint(tmp_path, "  s: {run: check.noop}\n") == []
    assert set(WORKERS.problems()) == {"team.broken"}


def test_an_entry_that_is_no_worker_info_of_its_name_is_an_error(installed):
    installed("odd-team", {"team.odd": "odd_team:NAME"}, {"odd_team": "NAME = 'not a worker'\n"})
    with pytest.raises(WorkerLoadError, match="points at str, not a WorkerInfo named 'team.odd'"):
        get_worker("team.odd")


def test_two_packages_declaring_one_name_is_an_error_naming_both(installed):
    for name in ("team-a", "team-b"):
        installed(name, {"team.twice": f"{name.replace('-', '_')}:W"},
                  {name.replace("-", "_"): "from workers.info import WorkerInfo\nW = WorkerInfo('team.twice', 'm:f', None)\n"})
    with pytest.raises(WorkerLoadError, match="declared by 'team-[ab]' .* and 'team-[ab]'"):
        get_worker("team.twice")


def test_an_unknown_worker_is_a_key_error_listing_the_installed_ones():
    with pytest.raises(KeyError, match="unknown worker 'nope'; known: .*check.noop"):
        get_worker("nope")


def test_the_catalogue_is_found_where_the_project_is_not_installed(tmp_path):
    """The worker image runs workers/ from a folder on PYTHONPATH, with no entry-point metadata."""
    shutil.copytree(ROOT / "workers", tmp_path / "workers", ignore=shutil.ignore_patterns("__pycache__"))
    code = ("import json; from workers.registry import WORKERS, get_worker;"
            "print(json.dumps([sorted(WORKERS), sorted({d.distribution for ds in WORKERS.declared().values() for d in ds}),"
            " get_worker('check.noop').target]))")
    alone = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}  # no project root, no site
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, env=alone, capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout) == [sorted(catalogue.ENTRY_POINTS), [SOURCE_FOLDER], "workers.checks:noop"]


def test_installed_or_not_each_built_in_worker_is_declared_once():
    assert all(len(declarations()[name]) == 1 for name in catalogue.ENTRY_POINTS)


def test_a_no_op_shard_imports_only_what_it_needs(tmp_path):
    """No params model, no pydantic, no fsspec for a local output, no scan of the installed packages."""
    request = json.dumps({"worker": "check.noop", "output": str(tmp_path / "out")})
    code = ("import runpy, sys, json; sys.argv = ['workers', 'run', '--request', sys.argv[1]]\n"
            "try:\n    runpy.run_module('workers', run_name='__main__')\nexcept SystemExit as e:\n    assert not e.code\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code, request], cwd=ROOT, capture_output=True, text=True, check=True)
    modules = set(json.loads(out.stdout.splitlines()[-1]))
    assert {m for m in modules if m.split(".")[0] == "workers"} == {
        "workers", "workers.artifacts", "workers.catalogue", "workers.checks", "workers.errors",
        "workers.info", "workers.registry", "workers.request", "workers.runner", "workers.step_output",
        "workers.wire"}
    assert not modules & {"pydantic", "fsspec", "importlib.metadata", "workers.params", "workers.check_params",
                          "uuid", "numpy", "pandas"}
