"""The command finds its project from any folder inside it and runs with that project's Airflow settings."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlbatch.cli import main as cli
from mlbatch.cli.project import configure, find_root, project_settings

PROJECT = Path(__file__).resolve().parents[3]


def make_project(tmp_path: Path) -> Path:
    (tmp_path / "proj" / "dags" / "specs").mkdir(parents=True)
    (tmp_path / "proj" / "notebooks" / "deep").mkdir(parents=True)
    return tmp_path / "proj"


def test_root_is_found_from_the_root_and_from_a_subfolder(tmp_path):
    root = make_project(tmp_path)
    assert find_root(root) == root.resolve()
    assert find_root(root / "notebooks" / "deep") == root.resolve()
    assert find_root(tmp_path) is None


def test_a_mlbatch_toml_marks_a_root_too(tmp_path):
    (tmp_path / "mlbatch.toml").write_text("")
    (tmp_path / "sub").mkdir()
    assert find_root(tmp_path / "sub") == tmp_path.resolve()


def test_settings_point_airflow_at_the_project_with_no_examples(tmp_path):
    root = make_project(tmp_path).resolve()
    env: dict[str, str] = {}
    assert configure(env, root / "notebooks") == root
    assert env == {
        "AIRFLOW_HOME": str(root / "airflow_home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "MLBATCH_SETTINGS": str(root / "mlbatch.toml"),
        "MLBATCH_ARTIFACTS": str(root / "artifacts"),
    }


def test_what_the_user_set_wins(tmp_path):
    root = make_project(tmp_path)
    env = {"AIRFLOW_HOME": "/elsewhere", "MLBATCH_ARTIFACTS": "s3://bucket/x"}
    configure(env, root)
    assert env["AIRFLOW_HOME"] == "/elsewhere" and env["MLBATCH_ARTIFACTS"] == "s3://bucket/x"


def test_the_projects_own_artifact_root_is_not_overridden(tmp_path):
    root = make_project(tmp_path)
    (root / "mlbatch.toml").write_text('[artifacts]\nroot = "s3://team-bucket/mlbatch"\n')
    assert "MLBATCH_ARTIFACTS" not in project_settings(root)


def test_outside_a_project_nothing_is_set(tmp_path):
    env: dict[str, str] = {}
    assert configure(env, tmp_path) is None and env == {}


def test_airflow_passes_through_with_the_same_settings(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "execv", lambda path, argv: calls.append((path, argv)))
    cli.main(["airflow", "dags", "list", "--output", "json"])
    airflow = str(Path(sys.executable).with_name("airflow"))
    assert calls == [(airflow, [airflow, "dags", "list", "--output", "json"])]


def run_mlbatch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`mlbatch ...` as a user runs it: none of the Airflow settings in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLBATCH_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT / "plugins"), str(PROJECT)])  # as an install would
    return subprocess.run([sys.executable, "-m", "mlbatch", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_new_and_lint_from_a_subfolder_use_the_projects_folders(tmp_path):
    root = make_project(tmp_path)
    new = run_mlbatch("new", "my_batch", cwd=root / "notebooks" / "deep")
    assert new.returncode == 0, new.stderr
    assert (root / "dags" / "specs" / "my_batch.yaml").is_file() and (root / "dags" / "my_batch.py").is_file()
    lint = run_mlbatch("lint", cwd=root / "notebooks")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "1 spec(s) checked, 0 error(s)" in lint.stdout
    assert not (root / "notebooks" / "airflow_home").exists()  # the project's home, not the working directory's


def test_make_lint_is_the_command_itself():
    makefile = (PROJECT / "Makefile").read_text()
    assert "\tpython -m mlbatch" not in makefile and "PYTHONPATH" not in makefile
    assert "lint: install\n\t$(BIN)/mlbatch lint\n" in makefile
