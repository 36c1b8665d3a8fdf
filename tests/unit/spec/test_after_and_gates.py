"""`schedule: {after: [...]}` and step gates in the spec: what parses, and what each mistake says."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mlbatch.spec.gates import Gate
from mlbatch.spec.lint import lint_paths
from mlbatch.spec.loader import load_spec
from mlbatch.spec.schedules import AfterSchedule

PRODUCER = """\
dag_id: churn_training
steps:
  features: {run: features.synthetic}
  train: {run: train.gbdt, needs: [features], shards: 2}
  ensemble:
    run: ensemble.average
    needs: [train]
    gate: {metric: auc, min: 0.8}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def consumer(directory: Path, schedule: str, name: str = "scoring.yaml") -> Path:
    return write(directory, name, f"schedule: {schedule}\nsteps:\n  score: {{run: check.noop}}\n")


def errors(path: Path) -> list:
    return [p for p in lint_paths([path], cpu_count=64) if p.severity == "error"]


@pytest.fixture
def specs(tmp_path):
    write(tmp_path, "training.yaml", PRODUCER)  # dag_id churn_training, declared in the file
    return tmp_path


# -- schedule.after ----------------------------------------------------------------------------

def test_after_with_and_without_a_cron(specs):
    spec = load_spec(consumer(specs, "{after: [churn_training.ensemble]}"))
    assert spec.schedule == AfterSchedule(after=["churn_training.ensemble"])
    spec = load_spec(consumer(specs, "{after: [churn_training.ensemble, churn_training.features], cron: '@daily'}"))
    assert (spec.schedule.after, spec.schedule.cron) == (["churn_training.ensemble", "churn_training.features"], "@daily")


def test_a_batch_id_with_dots_splits_at_the_last_dot(tmp_path):
    write(tmp_path, "team.churn.yaml", "steps:\n  model: {run: check.noop}\n")
    assert not errors(consumer(tmp_path, "{after: [team.churn.model]}"))


@pytest.mark.parametrize("schedule, field, message, fix", [
    ("{after: [churn_trainig.ensemble]}", "schedule.after[0]", "no batch 'churn_trainig' among the specs",
     "did you mean 'churn_training'?"),
    ("{after: [churn_training.ensembel]}", "schedule.after[0]", "batch 'churn_training' has no step 'ensembel'",
     "did you mean 'ensemble'?"),
    ("{after: [scoring.score]}", "schedule.after[0]", "cannot be scheduled after its own step 'score'",
     "within a batch, use needs"),
    ("{after: [churn_training.train, churn_training.train]}", "schedule.after[1]", "listed twice", "list it once"),
    ("{after: [ensemble]}", "schedule.after[0]", "'ensemble' does not name a step of a batch",
     "'<batch>.<step>', e.g. churn_training.ensemble"),
    ("{after: []}", "schedule.after", "at least 1 item", None),
    ("{aftr: [churn_training.ensemble]}", "schedule.aftr", "unknown field", "did you mean 'after'?"),
    ("{after: [churn_training.ensemble], cron: '@once'}", "schedule.cron", "cannot be combined with after",
     "repeating cron"),
    ("{after: [churn_training.ensemble], cron: '0 6 * *'}", "schedule.cron", "invalid cron expression", "5 fields"),
])
def test_a_wrong_after_names_the_field_and_the_fix(specs, schedule, field, message, fix):
    path = consumer(specs, schedule)
    problems = [p for p in errors(path) if p.field != "schedule.after"] or errors(path)
    assert len(problems) == 1, [str(p) for p in problems]
    [problem] = problems
    assert (problem.file, problem.field, problem.line) == (str(path), field, 1)
    assert message in problem.message
    assert fix is None or fix in problem.fix


def test_each_reference_is_reported_on_its_own_line(specs):
    path = write(specs, "scoring.yaml", """\
        schedule:
          after:
            - churn_training.ensemble
            - churn_training.scor
        steps:
          score: {run: check.noop}
    """)
    [problem] = errors(path)
    assert (problem.line, problem.field) == (4, "schedule.after[1]")
    assert str(problem).endswith("batch 'churn_training' has no step 'scor'. Fix: use one of the steps of "
                                 "'churn_training': ensemble, features, train")


def test_an_unknown_batch_breaks_only_the_consumers_dag_with_the_same_message(specs):
    from mlbatch.spec.problems import SpecError

    path = consumer(specs, "{after: [churn.ensemble]}")
    with pytest.raises(SpecError, match="no batch 'churn' among the specs"):
        load_spec(path)
    assert load_spec(specs / "training.yaml").dag_id == "churn_training"


# -- gates -------------------------------------------------------------------------------------

def test_a_gate_is_part_of_the_resolved_step(specs):
    steps = load_spec(specs / "training.yaml").resolved_steps()
    assert steps["ensemble"].gate == Gate(metric="auc", min=0.8)
    assert steps["train"].gate is None


@pytest.mark.parametrize("step, field, message, fix", [
    ("{run: ensemble.average, gate: {metric: acu, min: 0.8}}", "steps.m.gate.metric",
     "worker 'ensemble.average' reports no metric 'acu'", "did you mean 'auc'?"),
    ("{run: check.noop, gate: {metric: auc, min: 0.8}}", "steps.m.gate",
     "worker 'check.noop' reports no metrics a gate could read", "remove the gate"),
    ("{run: check.sleep, shards: 3, gate: {metric: slept_s, max: 1}}", "steps.m.gate",
     "only a step of one shard reports", "the step that combines the shards"),
    ("{run: ensemble.average, gate: {metric: auc}}", "steps.m.gate", "a gate needs a threshold", "add min or max"),
    ("{run: ensemble.average, gate: {metric: auc, min: 0.9, max: 0.8}}", "steps.m.gate", "above its max", "swap"),
    ("{run: ensemble.average, gate: {metric: auc, min: 0.8, on_fail: warn}}", "steps.m.gate.on_fail",
     "Input should be 'fail' or 'skip'", None),
    ("{run: ensemble.average, gate: {metric: auc, minimum: 0.8}}", "steps.m.gate.minimum", "unknown field",
     "did you mean 'min'?"),
])
def test_a_wrong_gate_names_the_field_and_the_fix(tmp_path, step, field, message, fix):
    path = write(tmp_path, "gated.yaml", f"steps:\n  m: {step}\n")
    problems = [p for p in errors(path) if p.field == field]
    assert len(problems) == 1, [str(p) for p in errors(path)]
    assert problems[0].step == "m" and message in problems[0].message
    assert fix is None or fix in problems[0].fix


@pytest.mark.parametrize("gate, metrics, verdict", [
    (Gate(metric="auc", min=0.8), {"auc": 0.81}, None),
    (Gate(metric="auc", min=0.8), {"auc": 0.8}, None),  # the threshold itself passes
    (Gate(metric="auc", min=0.8), {"auc": 0.61234}, "auc 0.6123 is below the minimum 0.8"),
    (Gate(metric="drift", max=0.25), {"drift": 0.4}, "drift 0.4 is above the maximum 0.25"),
    (Gate(metric="drift", min=0.1, max=0.3), {"drift": 0.2}, None),
    (Gate(metric="auc", min=0.8), {"logloss": 0.4}, "metric 'auc' was not reported (reported: logloss); gate auc >= 0.8"),
    (Gate(metric="auc", min=0.8), {"auc": None}, "metric auc is undefined (null, e.g. an AUC on rows of one class); "
                                                 "gate auc >= 0.8"),
    (Gate(metric="auc", min=0.8), {"auc": float("nan")}, "metric auc is nan, not a number; gate auc >= 0.8"),
    (Gate(metric="auc", min=0.8), {"auc": "high"}, "metric auc is 'high', not a number; gate auc >= 0.8"),
])
def test_a_gate_verdict_names_the_metric_its_value_and_the_threshold(gate, metrics, verdict):
    assert gate.verdict(metrics) == verdict
