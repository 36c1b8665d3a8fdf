"""The run summary: resources each computed step used (budget x time), spot or not."""
from __future__ import annotations

from mlbatch.cli.report import RunReport, StepRow, format_report


def test_resources_used_are_listed_for_computed_steps_only():
    computed = {"shard_count": 3, "peak_rss_mib": 410.0, "cache_hit": False, "uri": "s3://b/train",
                "usage": {"backend": "batch", "vcpu_s": 24.5, "gpu_s": 0.0, "memory_mib": 1536, "spot": True}}
    hit = {"shard_count": 1, "cache_hit": True, "uri": "s3://b/features",
           "usage": {"backend": "batch", "vcpu_s": 3.0, "gpu_s": 0.0, "memory_mib": 2048, "spot": False}}
    text = format_report(RunReport("churn", "run-1", "success",
                                   [StepRow("features", "success", 1, 1.0, hit), StepRow("train", "success", 1, 9.0, computed)]))
    assert "resources used" in text
    assert "train      batch  vcpu-s     24.5  gpu-s     0.0  memory 1536 MiB (peak 410 MiB)  spot" in text
    assert "features   batch" not in text  # a cache hit used nothing


def test_no_usage_section_without_usage():
    text = format_report(RunReport("d", "r", "success", [StepRow("s", "success", 1, 1.0, {"shard_count": 1})]))
    assert "resources used" not in text


def test_tracked_steps_point_at_their_mlflow_runs_and_hits_at_the_run_that_computed_them():
    def where(run_id: str, computed_by: str) -> dict:
        return {"run_id": run_id, "computed_by": computed_by, "tracking_uri": "sqlite:////a/mlflow/mlflow.db",
                "page": f"http://127.0.0.1:5000/#/experiments/1/runs/{run_id}",
                "open": "mlflow ui --backend-store-uri sqlite:////a/mlflow/mlflow.db"}

    text = format_report(RunReport("churn", "run-2", "success", [
        StepRow("features", "success", 1, 1.0, {"shard_count": 1}),
        StepRow("train", "success", 1, 1.0, {"shard_count": 5, "cache_hit": True, "mlflow": where("abc", "run-1")}),
        StepRow("ensemble", "success", 1, 1.0, {"shard_count": 1, "mlflow": where("def", "run-2")})]))
    assert "    train      run abc (cache hit: computed by run-1)  http://127.0.0.1:5000/#/experiments/1/runs/abc" in text
    assert "    ensemble   run def  http://127.0.0.1:5000/#/experiments/1/runs/def" in text
    assert "    open: mlflow ui --backend-store-uri sqlite:////a/mlflow/mlflow.db" in text
    assert "features   run" not in text


def test_model_quality_comes_from_out_of_fold_metrics_only_and_in_sample_figures_say_so():
    ensemble = {"shard_count": 1, "metrics": {"auc": 0.8428, "logloss": 0.453, "folds": 5}}
    score = {"shard_count": 1, "counts": {"rows": 900}, "metrics": {"mean_score": 0.3, "auc": 0.97, "logloss": 0.2}}
    text = format_report(RunReport("churn", "r", "success", [StepRow("ensemble", "success", 1, 2.0, ensemble),
                                                             StepRow("score", "success", 1, 3.0, score)]))
    assert "  model quality (ensemble, out of fold over 5 folds): AUC 0.8428, log loss 0.4530" in text
    assert "model quality (score" not in text
    assert "auc=0.9700 logloss=0.2000 (in-sample: on the scored rows, not held out)" in text


def test_regression_quality_is_rmse_and_mae():
    stack = {"shard_count": 1, "metrics": {"rmse": 55.12, "mae": 44.5, "folds": 5, "models": 2}}
    text = format_report(RunReport("diabetes", "r", "success", [StepRow("ensemble", "success", 1, 2.0, stack)]))
    assert "model quality (ensemble, out of fold over 5 folds): RMSE 55.1200, MAE 44.5000" in text


def test_a_one_shard_model_step_is_held_out_not_in_sample():
    """shards: 1 trains on 80% and measures the 20% holdout: never in-sample, whatever the worker."""
    mlp = {"shard_count": 1, "counts": {"train_rows": 800, "oof_rows": 200},
           "metrics": {"auc": 0.91, "logloss": 0.3, "best_epoch": 4, "epochs": 9, "device": "cpu"}}
    text = format_report(RunReport("churn", "r", "success", [StepRow("mlp", "success", 1, 2.0, mlp)]))
    assert "in-sample" not in text
    assert "  model quality (mlp, on 200 held-out rows): AUC 0.9100, log loss 0.3000" in text


def test_a_failed_step_shows_its_peak_against_its_budget_and_the_fix_under_it():
    oom = {"failure": "oom", "shard": "2/5", "peak_rss_mib": 211.4, "memory_mib": 150,
           "fix": "set resources.memory: 320Mi in this step, or on_oom: {grow: 2, max: 320Mi} to retry with twice "
                  "the memory"}
    text = format_report(RunReport("churn", "r", "failed", [StepRow("train", "failed", 1, 2.0, {}, oom)]))
    row, fix = text.splitlines()[3:5]
    assert row.split() == ["train", "failed", "1", "2.0", "s", "211", "MiB", "5", "-",
                           "oom", "at", "shard", "2/5:", "peak", "211", "MiB", "of", "150", "MiB"]
    assert fix == ("    fix: shard 2/5: set resources.memory: 320Mi in this step, or on_oom: {grow: 2, max: 320Mi} "
                   "to retry with twice the memory")


def test_a_failure_without_a_fix_or_a_peak_shows_its_class_and_budget_only():
    crash = {"failure": "code_error", "shard": "0/1", "peak_rss_mib": None, "memory_mib": 2048, "fix": None}
    text = format_report(RunReport("d", "r", "failed", [StepRow("s", "failed", 2, 1.0, {}, crash)]))
    assert text.splitlines()[3].endswith("code_error at shard 0/1: budget 2048 MiB")
    assert "fix:" not in text
