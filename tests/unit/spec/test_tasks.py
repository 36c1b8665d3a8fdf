"""Lint knows the task each step works on: the metrics a gate may read, the workers a task allows."""
from __future__ import annotations

from pathlib import Path

import pytest

from mlbatch.spec.lint import lint_file
from workers import params as p
from workers.registry import WORKERS, WorkerInfo

REGRESSION = """
steps:
  data:
    run: table.load
    params: {source: SOURCE, label: target, task: regression}
  gbdt: {run: train.gbdt, needs: [data], shards: 3}
  mlp: {run: train.mlp, needs: [data], shards: 3}
  ensemble:
    run: ensemble.stack
    needs: [data, gbdt, mlp]
    gate: {metric: rmse, max: 60}
  score: {run: predict.batch, needs: [ensemble, data]}
"""


def lint(tmp_path: Path, text: str) -> list[str]:
    source = tmp_path / "diabetes.csv"
    source.write_text("age,bmi,target\n0.03,0.06,151\n")
    path = tmp_path / "batch.yaml"
    path.write_text(text.replace("SOURCE", str(source)))
    return [f"{p.field}: {p.message} Fix: {p.fix}" for p in lint_file(path, cpu_count=64) if p.severity == "error"]


def test_a_regression_batch_that_stacks_and_gates_on_rmse_lints_clean(tmp_path):
    assert lint(tmp_path, REGRESSION) == []


def test_a_gate_on_a_binary_metric_in_a_regression_batch_names_the_task_and_the_right_metric(tmp_path):
    assert lint(tmp_path, REGRESSION.replace("{metric: rmse, max: 60}", "{metric: auc, min: 0.8}")) == [
        "steps.ensemble.gate.metric: worker 'ensemble.stack' reports no metric 'auc' on a regression table "
        "Fix: use one of the metrics of 'ensemble.stack' on a regression table: folds, mae, models, rmse"]


def test_a_gate_on_rmse_in_a_binary_batch_is_an_error(tmp_path):
    binary = REGRESSION.replace(", task: regression", ", task: binary")
    assert lint(tmp_path, binary)[0].startswith("steps.ensemble.gate.metric: worker 'ensemble.stack' reports no "
                                                "metric 'rmse' on a binary table")


def test_the_task_reaches_a_step_through_other_steps(tmp_path):
    spec = REGRESSION.replace("score: {run: predict.batch, needs: [ensemble, data]}",
                              "score: {run: predict.batch, needs: [ensemble], gate: {metric: mae, max: 60}}")
    assert lint(tmp_path, spec) == []  # score <- ensemble <- gbdt <- data (regression): mae


@pytest.fixture
def binary_only_worker(monkeypatch):
    info = WorkerInfo("train.logit", "workers.tabular.train:gbdt", p.TrainParams, "a binary-only model",
                      task_metrics={"binary": ("auc",)})
    monkeypatch.setitem(WORKERS, info.name, info)


def test_a_binary_only_worker_in_a_regression_batch_is_caught_before_anything_runs(tmp_path, binary_only_worker):
    spec = REGRESSION.replace("mlp: {run: train.mlp", "mlp: {run: train.logit")
    assert lint(tmp_path, spec) == [
        "steps.mlp.run: worker 'train.logit' handles binary tasks only, but this step reads a regression table "
        "Fix: use a worker that handles regression (python -m workers list), or a table of another task"]
