"""A newcomer's first hour, as the README tells it: `mlbatch new`, edit, `mlbatch lint`,
`mlbatch demo NAME` from a subfolder of a fresh project, with no Airflow settings in the
environment; and the README's regression example, run as written."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def mlbatch(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """The command as a user runs it: no AIRFLOW_* or artifact settings in the environment."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AIRFLOW") and k not in ("MLBATCH_ARTIFACTS", "MLBATCH_SETTINGS")}
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT / "plugins"), str(PROJECT)])  # what the install provides
    return subprocess.run([sys.executable, "-m", "mlbatch", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A fresh project: a dags/specs folder, a data folder, a notebooks folder to work from."""
    from sklearn.datasets import load_diabetes

    root = tmp_path_factory.mktemp("newcomer")
    (root / "dags" / "specs").mkdir(parents=True)
    (root / "notebooks").mkdir()
    (root / "data").mkdir()
    load_diabetes(as_frame=True).frame.to_csv(root / "data" / "diabetes.csv", index=False)
    return root


def test_new_lint_and_demo_from_a_subfolder_with_no_example_dags(project):
    work = project / "notebooks"
    assert mlbatch("new", "my_batch", cwd=work).returncode == 0
    spec = project / "dags" / "specs" / "my_batch.yaml"
    spec.write_text(spec.read_text().replace("rows: 50000", "rows: 3000").replace("shards: 3", "shards: 2"))
    lint = mlbatch("lint", cwd=work)
    assert lint.returncode == 0 and "1 spec(s) checked, 0 error(s)" in lint.stdout, lint.stdout + lint.stderr

    demo = mlbatch("demo", "my_batch", cwd=work)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert re.search(r"my_batch\s+run \S+\s+-> SUCCESS", demo.stdout)
    assert "model quality (ensemble, out of fold over 2 folds): AUC" in demo.stdout
    assert (project / "airflow_home" / "airflow.db").is_file() and not (work / "airflow_home").exists()
    assert (project / "artifacts" / "my_batch").is_dir()

    listed = mlbatch("airflow", "dags", "list", "--output", "json", cwd=work)
    assert listed.returncode == 0, listed.stderr
    dags = json.loads(next(line for line in listed.stdout.splitlines() if line.startswith("[")))
    assert [dag["dag_id"] for dag in dags] == ["my_batch"], listed.stdout  # no example DAGs

    # With the project's metadata DB there, lint sees (and says) that the alert connection is missing:
    # the same from `make lint` (the same command) as from `mlbatch lint`, from any folder
    lint = mlbatch("lint", cwd=work)
    assert "Airflow connection 'slack_ml_alerts' is not defined" in lint.stdout


def readme_regression_spec() -> str:
    readme = (PROJECT / "README.md").read_text()
    after = readme.split("<!-- regression example:", 1)[1]
    return after.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_the_readme_regression_example_runs_as_written(project):
    work = project / "notebooks"
    assert mlbatch("new", "diabetes", cwd=work).returncode == 0
    (project / "dags" / "specs" / "diabetes.yaml").write_text(readme_regression_spec())
    lint = mlbatch("lint", cwd=project)
    assert " error(s)" in lint.stdout and "0 error(s)" in lint.stdout, lint.stdout

    demo = mlbatch("demo", "diabetes", cwd=work)
    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-3000:]
    assert re.search(r"diabetes\s+run \S+\s+-> SUCCESS", demo.stdout)
    quality = re.search(r"model quality \(ensemble, out of fold over 5 folds\): RMSE ([\d.]+), MAE ([\d.]+)",
                        demo.stdout)
    assert quality and float(quality.group(1)) <= 65, demo.stdout[-3000:]
    assert "(in-sample: on the scored rows, not held out)" in demo.stdout
