from __future__ import annotations

import textwrap
from datetime import date, timedelta
from pathlib import Path

import pytest

from mlbatch.spec.loader import load_spec
from mlbatch.spec.models import BatchSpec, ShardsFrom, availability_problems
from mlbatch.spec.problems import Problem, SpecError

FULL_SPEC = """\
dag_id: churn_training
description: Train the churn model
schedule: "0 3 * * *"
owner: ml-platform
tags: [churn]
alerts:
  slack: slack_ml_alerts
defaults:
  backend: local
  image: mlbatch-worker:cpu
  resources: {vcpu: 2, memory: 2Gi}
  retries: 2
  retry_delay: 1m
  timeout: 30m
steps:
  score:
    run: predict.batch
    needs: [ensemble, features]
    shards: {per: 50000, of: features.rows, max: 100}
  features:
    run: features.synthetic
    params: {rows: 200000, seed: 7}
  train:
    run: train.gbdt
    needs: [features]
    shards: 5
    resources: {memory: 4Gi}
    retries: 0
    timeout: 1h30m
  ensemble:
    run: ensemble.average
    needs: [train]
"""


@pytest.fixture(autouse=True)
def _no_backend_override(monkeypatch):
    monkeypatch.delenv("MLBATCH_BACKEND", raising=False)


def write(tmp_path: Path, text: str, name: str = "churn.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"Batch spec {path} has {len(info.value.problems)} problem(s):")
    return info.value.problems


def the_problem(path: Path) -> Problem:
    problems = problems_of(path)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def line_of(path: Path, snippet: str) -> int:
    """1-based number of the first line of the file containing `snippet`."""
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if snippet in line)


def steps_spec(steps: str, head: str = "") -> str:
    return head + "steps:\n" + textwrap.indent(textwrap.dedent(steps), "  ")


# -- happy path ---------------------------------------------------------------------------------

def test_full_spec_resolves_defaults_merged_in_topological_order(tmp_path):
    spec = load_spec(write(tmp_path, FULL_SPEC))
    assert (spec.dag_id, spec.schedule, spec.owner, spec.tags) == ("churn_training", "0 3 * * *", "ml-platform", ["churn"])
    assert spec.alerts.slack == "slack_ml_alerts"
    assert (spec.start_date, spec.catchup, spec.max_active_runs) == (date(2026, 1, 1), False, 1)

    steps = spec.resolved_steps()
    assert list(steps) == ["features", "train", "ensemble", "score"]
    features, train, ensemble, score = steps.values()
    assert features.params == {"rows": 200000, "seed": 7, "source": None}
    assert (features.vcpu, features.memory_mib, features.retries, features.timeout) == (2.0, 2048, 2, timedelta(minutes=30))
    # A step overriding one resource keeps the other defaults.
    assert (train.vcpu, train.memory_mib, train.gpu) == (2.0, 4096, 0)
    assert (train.retries, train.timeout, train.retry_delay) == (0, timedelta(hours=1, minutes=30), timedelta(minutes=1))
    assert train.shards == 5 and train.needs == ("features",)
    assert train.params["max_iter"] == 100  # worker default filled in
    assert ensemble.params == {} and ensemble.image == "mlbatch-worker:cpu" and ensemble.backend == "local"
    assert score.shards == ShardsFrom(per=50000, step="features", count="rows", max=100)
    assert score.needs == ("ensemble", "features")


def test_dag_id_defaults_to_the_file_name(tmp_path):
    path = write(tmp_path, steps_spec("a: {run: check.noop}\n"), name="nightly-scores.yaml")
    assert load_spec(path).dag_id == "nightly-scores"


def test_file_name_that_is_not_a_valid_dag_id_is_reported(tmp_path):
    problem = the_problem(write(tmp_path, steps_spec("a: {run: check.noop}\n"), name="my spec.yaml"))
    assert problem.field == "dag_id" and "'my spec'" in problem.message and "set dag_id" in problem.fix


def test_schedule_presets_and_null_are_accepted(tmp_path):
    for schedule in ("'@daily'", "'@once'", "null"):
        spec = load_spec(write(tmp_path, steps_spec("a: {run: check.noop}\n", f"schedule: {schedule}\n")))
        assert spec.schedule == (None if schedule == "null" else schedule.strip("'"))


# -- one test per error class -------------------------------------------------------------------

def test_yaml_syntax_error_names_line_and_column(tmp_path):
    path = write(tmp_path, "steps:\n  a: {run: check.noop\n  b: [1, 2\n")
    problem = the_problem(path)
    assert problem.file == str(path) and problem.line is not None
    assert problem.message.startswith("invalid YAML:") and f"line {problem.line}, column" in problem.message
    assert "around line" in problem.fix


def test_unknown_step_field_says_did_you_mean_with_line(tmp_path):
    path = write(tmp_path, FULL_SPEC.replace("    needs: [features]\n", "    needz: [features]\n"))
    problem = the_problem(path)
    assert (problem.step, problem.field, problem.line) == ("train", "steps.train.needz", 25)
    assert line_of(path, "needz") == 25
    assert str(problem) == f"{path}:25: step 'train', field 'needz': unknown field. Fix: did you mean 'needs'?"


@pytest.mark.parametrize(
    ("old", "new", "field", "suggestion"),
    [
        ("owner: ml-platform", "ownr: ml-platform", "ownr", "owner"),
        ("  retries: 2\n", "  retires: 2\n", "defaults.retires", "retries"),
        ("resources: {memory: 4Gi}", "resources: {memroy: 4Gi}", "steps.train.resources.memroy", "memory"),
        ("max: 100}", "maxx: 100}", "steps.score.shards.maxx", "max"),
        ("  slack: slack_ml_alerts", "  slak: slack_ml_alerts", "alerts.slak", "slack"),
    ],
)
def test_unknown_field_anywhere_suggests_the_closest(tmp_path, old, new, field, suggestion):
    problem = the_problem(write(tmp_path, FULL_SPEC.replace(old, new)))
    assert problem.field == field and problem.message == "unknown field"
    assert problem.fix == f"did you mean {suggestion!r}?"


def test_unknown_worker_suggests_the_closest_and_lists_known(tmp_path):
    path = write(tmp_path, FULL_SPEC.replace("run: train.gbdt", "run: train.gdbt"))
    problem = the_problem(path)
    assert (problem.step, problem.field, problem.line) == ("train", "steps.train.run", line_of(path, "train.gdbt"))
    assert problem.message == "unknown worker 'train.gdbt'"
    assert problem.fix.startswith("did you mean 'train.gbdt'?") and "python -m workers list" in problem.fix


def test_needs_naming_a_missing_step_suggests_the_closest(tmp_path):
    problem = the_problem(write(tmp_path, FULL_SPEC.replace("needs: [features]", "needs: [featurs]")))
    assert (problem.step, problem.field) == ("train", "steps.train.needs[0]")
    assert problem.message == "needs unknown step 'featurs'" and problem.fix == "did you mean 'features'?"


def test_step_needing_itself(tmp_path):
    problem = the_problem(write(tmp_path, steps_spec("a: {run: check.noop, needs: [a]}\n")))
    assert (problem.step, problem.message, problem.fix) == ("a", "step 'a' needs itself", "remove 'a' from needs")


def test_cycle_is_named(tmp_path):
    path = write(tmp_path, steps_spec("""\
        a: {run: check.noop, needs: [c]}
        b: {run: check.noop, needs: [a]}
        c: {run: check.noop, needs: [b]}
        d: {run: check.noop}
    """))
    problem = the_problem(path)
    assert problem.step == "a" and problem.line == 2
    assert problem.message == "needs form a cycle: a -> c -> b -> a"
    assert "remove one" in problem.fix


@pytest.mark.parametrize(
    ("schedule", "message", "fix_part"),
    [
        ("'0 25 * * *'", "invalid cron expression '0 25 * * *'", "minute hour"),
        ("'* * * * * *'", "invalid cron expression '* * * * * *'", "5 fields"),
        ("'@dayly'", "unknown schedule preset '@dayly'", "did you mean '@daily'?"),
    ],
)
def test_bad_schedule(tmp_path, schedule, message, fix_part):
    problem = the_problem(write(tmp_path, steps_spec("a: {run: check.noop}\n", f"schedule: {schedule}\n")))
    assert (problem.step, problem.field, problem.line) == (None, "schedule", 1)
    assert problem.message == message and fix_part in problem.fix


@pytest.mark.parametrize(
    ("resources", "field", "message_part"),
    [
        ("{memory: 0}", "memory", "more than 0"),
        ("{memory: -2Gi}", "memory", "512Mi"),
        ("{memory: 2Q}", "memory", "2Gi"),
        ("{vcpu: 0}", "vcpu", "greater than 0"),
        ("{vcpu: -1}", "vcpu", "greater than 0"),
        ("{vcpu: lots}", "vcpu", "valid number"),
        ("{gpu: -1}", "gpu", "greater than or equal to 0"),
    ],
)
def test_bad_resources(tmp_path, resources, field, message_part):
    path = write(tmp_path, steps_spec(f"a:\n  run: check.noop\n  resources: {resources}\n"))
    problem = the_problem(path)
    assert (problem.step, problem.field, problem.line) == ("a", f"steps.a.resources.{field}", 4)
    assert message_part in problem.message


@pytest.mark.parametrize("shards", [0, 10001])
def test_shard_count_out_of_range(tmp_path, shards):
    path = write(tmp_path, FULL_SPEC.replace("shards: 5", f"shards: {shards}"))
    problem = the_problem(path)
    assert (problem.step, problem.field, problem.line) == ("train", "steps.train.shards", line_of(path, f"shards: {shards}"))
    assert problem.message == f"shards must be between 1 and 10000; got {shards}" and "10000" in problem.fix


def test_shards_of_a_step_not_in_needs(tmp_path):
    problem = the_problem(write(tmp_path, FULL_SPEC.replace("needs: [ensemble, features]", "needs: [ensemble]")))
    assert (problem.step, problem.field) == ("score", "steps.score.shards.of")
    assert "'features', which is not in needs" in problem.message and problem.fix.startswith("add 'features' to needs")


def test_shards_of_must_name_step_and_count(tmp_path):
    problem = the_problem(write(tmp_path, FULL_SPEC.replace("of: features.rows", "of: features")))
    assert problem.field == "steps.score.shards.of" and "'<step>.<count>'" in problem.fix


def test_unknown_param_suggests_the_closest(tmp_path):
    path = write(tmp_path, FULL_SPEC.replace("{rows: 200000", "{rowz: 200000"))
    problem = the_problem(path)
    assert (problem.step, problem.field, problem.line) == ("features", "steps.features.params.rowz", line_of(path, "rowz"))
    assert problem.message == "unknown param 'rowz' for worker 'features.synthetic'"
    assert problem.fix == "did you mean 'rows'?"


def test_param_out_of_range_and_missing_required_param(tmp_path):
    path = write(tmp_path, steps_spec("""\
        a: {run: features.synthetic, params: {rows: 0}}
        b: {run: check.memory}
    """))
    by_step = {p.step: p for p in problems_of(path)}
    assert by_step["a"].field == "steps.a.params.rows" and "greater than 0" in by_step["a"].message
    assert by_step["b"].message.startswith("param 'mib' is required by worker 'check.memory'")
    assert "params: {mib: ...}" in by_step["b"].fix


def test_every_backend_of_the_contract_is_accepted(tmp_path):
    for backend in ("local", "batch", "ecs"):
        path = write(tmp_path, FULL_SPEC.replace("    retries: 0\n", f"    retries: 0\n    backend: {backend}\n")
                     .replace("resources: {memory: 4Gi}", "resources: {memory: 4Gi}" if backend != "ecs" else
                              "resources: {vcpu: 2, memory: 4Gi}"))
        assert load_spec(path).resolved_steps()["train"].backend == backend


def test_an_ecs_step_needs_a_fargate_size_and_lint_names_the_nearest(tmp_path):
    path = write(tmp_path, FULL_SPEC.replace("    retries: 0\n", "    retries: 0\n    backend: ecs\n")
                 .replace("resources: {memory: 4Gi}", "resources: {vcpu: 1, memory: 1Gi}"))
    problem = the_problem(path)
    assert problem.field == "steps.train.resources"
    assert problem.message == "step 'train' runs on Fargate, which has no task size {vcpu: 1, memory: 1Gi}"
    assert problem.fix == "use the nearest Fargate size, resources: {vcpu: 1, memory: 2Gi}"


def test_a_gpu_step_on_fargate_spot_is_an_error_with_the_fix(tmp_path):
    path = write(tmp_path, FULL_SPEC.replace("    retries: 0\n", "    retries: 0\n    backend: ecs\n    capacity: spot\n")
                 .replace("resources: {memory: 4Gi}", "resources: {gpu: 1}"))
    problem = the_problem(path)
    assert problem.field == "steps.train.capacity"
    assert "Fargate (Spot) has no GPUs" in problem.message and "capacity: on-demand" in problem.fix


def test_a_batch_step_takes_queue_and_deferrable(tmp_path):
    path = write(tmp_path, FULL_SPEC.replace("    retries: 0\n",
                                             "    retries: 0\n    backend: batch\n    queue: cpu-spot\n    deferrable: false\n"))
    train = load_spec(path).resolved_steps()["train"]
    assert (train.backend, train.queue, train.deferrable) == ("batch", "cpu-spot", False)
    assert load_spec(path).resolved_steps()["features"].queue is None


def test_a_gpu_step_on_a_cpu_queue_is_an_error_with_the_fix(tmp_path):
    path = write(tmp_path, FULL_SPEC.replace("    resources: {memory: 4Gi}\n", "    resources: {gpu: 1}\n    queue: cpu-spot\n"))
    problem = the_problem(path)
    assert problem.field == "steps.train.queue"
    assert "asks for 1 GPU but queue 'cpu-spot' has none" in problem.message and "gpu-spot" in problem.fix


def test_a_batch_timeout_under_a_minute_is_an_error(tmp_path):
    path = write(tmp_path, FULL_SPEC.replace("  backend: local", "  backend: batch").replace("timeout: 1h30m", "timeout: 30s"))
    problem = the_problem(path)
    assert problem.field == "steps.train.timeout"
    assert "shortest timeout is 60s; got 30s" in problem.message and problem.fix == "use timeout: 1m or more"


def test_an_unknown_queue_role_names_the_roles(tmp_path):
    problem = the_problem(write(tmp_path, FULL_SPEC.replace("    retries: 0\n", "    retries: 0\n    queue: gpu_spot\n")))
    assert problem.field == "steps.train.queue" and "'gpu-spot'" in problem.message


def test_unknown_backend_is_a_validation_error(tmp_path):
    problem = the_problem(write(tmp_path, FULL_SPEC.replace("  backend: local", "  backend: lokal")))
    assert problem.field == "defaults.backend" and "'local'" in problem.message and "'lokal'" in problem.message


def test_mlbatch_backend_env_replaces_only_the_default_backend(tmp_path, monkeypatch):
    text = FULL_SPEC.replace("    retries: 0\n", "    retries: 0\n    backend: local\n")
    spec = load_spec(write(tmp_path, text))
    monkeypatch.setenv("MLBATCH_BACKEND", "batch")
    steps = spec.resolved_steps()
    assert steps["train"].backend == "local"  # set by the step itself
    assert {steps[n].backend for n in ("features", "ensemble", "score")} == {"batch"}
    monkeypatch.setenv("MLBATCH_BACKEND", "ecs")  # and the moved steps are checked against Fargate's sizes
    problems = problems_of(tmp_path / "churn.yaml")
    assert {p.message.split("'")[1] for p in problems} == {"features", "ensemble", "score"}  # train stays local
    assert all(p.field == "defaults.resources" and "{vcpu: 2, memory: 2Gi}" in p.message for p in problems)
    assert problems[0].fix == "use the nearest Fargate size, resources: {vcpu: 2, memory: 4Gi}"


def test_invalid_mlbatch_backend_env_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("MLBATCH_BACKEND", "k8s")
    problem = the_problem(write(tmp_path, FULL_SPEC))
    assert "MLBATCH_BACKEND='k8s' is not a backend" in problem.message and "unset it" in problem.fix


def test_all_problems_are_reported_at_once(tmp_path):
    text = FULL_SPEC.replace("shards: 5", "shards: 0").replace("run: ensemble.average", "run: ensemble.avg")
    problems = problems_of(write(tmp_path, text))
    assert [(p.step, p.field) for p in problems] == [("train", "steps.train.shards"), ("ensemble", "steps.ensemble.run")]


@pytest.mark.parametrize(("text", "got"), [("", "an empty file"), ("- a\n- b\n", "a list"), ("just text\n", "a str")])
def test_top_level_must_be_a_mapping(tmp_path, text, got):
    problem = the_problem(write(tmp_path, text))
    assert problem.message == f"a spec must be a mapping of fields, got {got}"


def test_missing_steps_and_missing_run(tmp_path):
    assert the_problem(write(tmp_path, "owner: me\n")).field == "steps"
    problem = the_problem(write(tmp_path, steps_spec("a: {needs: []}\n")))
    assert problem.field == "steps.a.run" and problem.message.startswith("required field is missing")
    assert "train.gbdt" in problem.fix and "command:" in problem.fix


def test_step_that_is_not_a_mapping(tmp_path):
    problem = the_problem(write(tmp_path, steps_spec("a:\n")))
    assert problem.step == "a" and "mapping" in problem.message


def test_invalid_step_name(tmp_path):
    problem = the_problem(write(tmp_path, steps_spec("'bad name': {run: check.noop}\n")))
    assert problem.field == "steps.bad name" and "letters, digits" in problem.fix


def test_key_written_twice_is_reported(tmp_path):
    problem = the_problem(write(tmp_path, steps_spec("a: {run: check.noop}\na: {run: check.sleep}\n")))
    assert problem.line == 3 and "'a' is written twice" in problem.message and "lines 2 and 3" in problem.message


def test_unreadable_file(tmp_path):
    problem = the_problem(tmp_path / "missing.yaml")
    assert problem.file == str(tmp_path / "missing.yaml") and problem.message.startswith("cannot read the spec")


def test_empty_steps_and_needs_that_is_not_a_list(tmp_path):
    assert the_problem(write(tmp_path, "steps: {}\n")).message == "a batch needs at least one step"
    problem = the_problem(write(tmp_path, steps_spec("a: {run: check.noop}\nb: {run: check.noop, needs: a}\n")))
    assert problem.field == "steps.b.needs" and problem.fix == "write it as a list, e.g. [a]"
