from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlbatch.cli.main import COMMANDS, build_parser
from mlbatch.spec.lint import lint_file, lint_paths
from mlbatch.spec.loader import load_spec
from mlbatch.spec.problems import SpecError

PROJECT = Path(__file__).resolve().parents[3]
GOOD = "schedule: '@daily'\nsteps:\n  a: {run: check.noop}\n  b: {run: check.noop, needs: [a]}\n"


@pytest.fixture(autouse=True)
def _no_backend_override(monkeypatch):
    monkeypatch.delenv("MLBATCH_BACKEND", raising=False)


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def errors(problems):
    return [p for p in problems if p.severity == "error"]


def run_cli(*args: str, cwd: Path = PROJECT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLBATCH_BACKEND"}
    env["PYTHONPATH"] = f"{PROJECT / 'plugins'}{os.pathsep}{PROJECT}"
    return subprocess.run([sys.executable, "-m", "mlbatch", "lint", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


# -- lint_paths ---------------------------------------------------------------------------------

def test_directory_lints_yaml_and_yml_files_and_reports_only_the_broken_one(tmp_path):
    write(tmp_path, "good.yaml", GOOD)
    bad = write(tmp_path, "bad.yml", GOOD.replace("needs:", "needz:"))
    write(tmp_path, "notes.txt", "not a spec")
    problems = lint_paths([tmp_path], cpu_count=64)
    assert [(p.file, p.step, p.field) for p in problems] == [(str(bad), "b", "steps.b.needz")]
    assert problems[0].fix == "did you mean 'needs'?"


def test_duplicate_dag_ids_fail_the_alphabetically_later_file_and_the_winner_still_loads(tmp_path):
    first = write(tmp_path, "alpha.yaml", "dag_id: churn\n" + GOOD)
    second = write(tmp_path, "beta.yaml", "owner: me\ndag_id: churn\n" + GOOD)
    problems = lint_paths([tmp_path], cpu_count=64)
    assert [(p.file, p.field, p.line) for p in problems] == [(str(second), "dag_id", 2)]
    assert problems[0].message == "dag_id 'churn' is also declared by alpha.yaml"
    assert problems[0].fix.startswith("rename one")
    assert load_spec(first).dag_id == "churn"
    with pytest.raises(SpecError, match="also declared by alpha.yaml"):
        load_spec(second)


def test_file_named_after_the_dag_id_keeps_it(tmp_path):
    owner = write(tmp_path, "zeta.yaml", GOOD)  # dag_id zeta from its name
    other = write(tmp_path, "alpha.yaml", "dag_id: zeta\n" + GOOD)
    problems = lint_paths([tmp_path], cpu_count=64)
    assert [(p.file, p.message) for p in problems] == [(str(other), "dag_id 'zeta' is also declared by zeta.yaml")]
    assert load_spec(owner).dag_id == "zeta"


def test_broken_yaml_files_claim_no_dag_id(tmp_path):
    write(tmp_path, "alpha.yaml", "dag_id: churn\nsteps: [\n")
    kept = write(tmp_path, "beta.yaml", "dag_id: churn\n" + GOOD)
    assert load_spec(kept).dag_id == "churn"


def test_vcpu_above_the_machine_is_a_warning_not_an_error(tmp_path):
    path = write(tmp_path, "big.yaml", GOOD.replace("a: {run: check.noop}", "a: {run: check.noop, resources: {vcpu: 8}}"))
    problems = lint_paths([path], cpu_count=4)
    assert [(p.severity, p.step, p.field) for p in problems] == [("warning", "a", "steps.a.resources.vcpu")]
    assert "8 vcpu" in problems[0].message and "4 CPU" in problems[0].message
    assert "at most 4" in problems[0].fix
    assert str(problems[0]).startswith(f"{path}:3: warning: step 'a'")
    assert lint_paths([path], cpu_count=8) == []


def test_vcpu_warning_for_inherited_defaults_is_given_once(tmp_path):
    path = write(tmp_path, "big.yaml", "defaults: {resources: {vcpu: 16}}\n" + GOOD)
    problems = lint_paths([path], cpu_count=2)
    assert len(problems) == 1 and problems[0].field == "defaults.resources.vcpu"
    assert "(inherited by a, b)" in problems[0].message


def test_missing_path_is_an_error(tmp_path):
    problems = lint_paths([tmp_path / "nope"])
    assert len(errors(problems)) == 1 and problems[0].message == "no such file or directory"


# -- CLI ----------------------------------------------------------------------------------------

def test_cli_exits_0_on_good_specs_and_prints_the_summary(tmp_path):
    write(tmp_path, "good.yaml", GOOD)
    result = run_cli(str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "1 spec(s) checked, 0 error(s), 0 warning(s)"


def test_cli_exits_1_on_errors_and_prints_each_problem(tmp_path):
    write(tmp_path, "good.yaml", GOOD)
    bad = write(tmp_path, "bad.yaml", GOOD.replace("needs: [a]", "needs: [aa]").replace("@daily", "@dayly"))
    result = run_cli(str(tmp_path))
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert lines[0] == f"{bad}:1: field 'schedule': unknown schedule preset '@dayly'. Fix: did you mean '@daily'?"
    assert lines[1] == f"{bad}:4: step 'b', field 'needs[0]': needs unknown step 'aa'. Fix: did you mean 'a'?"
    assert lines[-1] == "2 spec(s) checked, 2 error(s), 0 warning(s)"


def test_cli_warnings_alone_exit_0(tmp_path):
    path = write(tmp_path, "big.yaml", GOOD.replace("{run: check.noop}", "{run: check.noop, resources: {vcpu: 100000}}"))
    result = run_cli(str(path))
    assert result.returncode == 0, result.stdout
    assert "warning: step 'a', field 'resources.vcpu'" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "1 spec(s) checked, 0 error(s), 1 warning(s)"


def test_cli_defaults_to_dags_specs_of_the_working_directory(tmp_path):
    from mlbatch.cli.scaffold import loader_source

    write(tmp_path / "dags" / "specs", "one.yaml", GOOD)
    write(tmp_path / "dags" / "specs", "two.yaml", "steps: {}\n")
    for name in ("one", "two"):  # each spec has its loader (a spec without one is an error of its own)
        write(tmp_path / "dags", f"{name}.py", loader_source(name))
    result = run_cli(cwd=tmp_path)
    assert result.returncode == 1
    assert f"{Path('dags/specs/two.yaml')}:1: field 'steps'" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "2 spec(s) checked, 1 error(s), 0 warning(s)"


def test_commands_are_registered_in_one_list():
    assert "lint" in [command.name for command in COMMANDS]
    args = build_parser().parse_args(["lint", "a.yaml", "specs"])
    lint = next(command for command in COMMANDS if command.name == "lint")
    assert args.handler is lint.handler and [str(p) for p in args.paths] == ["a.yaml", "specs"]


def test_alert_connection_that_is_not_defined_is_a_warning(tmp_path, monkeypatch):
    from tests.integration.airflow_run import migrate_db

    migrate_db()  # lint looks in the metadata DB when the environment does not define it
    spec = tmp_path / "alerting.yaml"
    spec.write_text("alerts: {slack: slack_nowhere}\nsteps:\n  only: {run: check.noop}\n")
    # through the CLI, in a fresh process: what a user runs, unaffected by Airflow state other tests left here
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_NOWHERE", raising=False)
    missing = run_cli(str(spec))
    assert missing.returncode == 0  # a warning, not an error
    assert "slack_nowhere" in missing.stdout and "airflow connections add slack_nowhere" in missing.stdout
    assert "0 error(s), 1 warning(s)" in missing.stdout
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_NOWHERE", '{"conn_type": "slackwebhook", "password": "x"}')
    assert "0 error(s), 0 warning(s)" in run_cli(str(spec)).stdout


def test_on_oom_max_not_above_the_budget_is_a_warning(tmp_path):
    from mlbatch.spec.lint import lint_paths

    spec = tmp_path / "grow.yaml"
    spec.write_text("steps:\n  hog:\n    run: check.noop\n    resources: {memory: 2Gi}\n"
                    "    on_oom: {grow: 2.0, max: 1Gi}\n")
    [problem] = lint_paths([spec])
    assert problem.severity == "warning" and problem.step == "hog"
    assert "on_oom.max (1024 MiB)" in problem.message and "2048 MiB" in problem.message
    assert problem.line == 5


def test_a_misspelled_backend_in_the_environment_is_one_error_per_spec_with_the_fix(tmp_path, monkeypatch):
    spec = write(tmp_path, "good.yaml", GOOD + "defaults: {resources: {vcpu: 64}, on_oom: {grow: 2, max: 1Gi}}\n")
    monkeypatch.setenv("MLBATCH_BACKEND", "dockr")
    problems = lint_file(spec, cpu_count=2)  # the warnings that resolve steps must not raise
    assert [(p.severity, p.fix) for p in problems] == [("error", "did you mean 'docker'?")]
    assert "MLBATCH_BACKEND='dockr' is not a backend" in problems[0].message
