"""The mlbatch page's numbers: cost at the [prices] settings, right-sizing advice, the SVG chart, the step views."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mlbatch.settings import PriceSettings
from mlbatch.ui.advice import StepUse, advice
from mlbatch.ui.pricing import step_cost
from mlbatch.ui.specs import resolved_steps
from mlbatch.ui.svg import Point, line_chart
from mlbatch.ui.views import gated_metric, run_view, step_advice
from tests.conftest import PROJECT

PRICES = PriceSettings()


def test_a_local_or_fargate_step_costs_vcpu_hours_plus_gb_hours():
    usage = {"backend": "ecs", "vcpu_s": 7200.0, "gpu_s": 0.0, "memory_mib": 4096, "spot": False}
    cost = step_cost(usage, vcpu=2, prices=PRICES)  # 2 vCPU for 1 hour, 4 GB
    assert cost.usd == pytest.approx(2 * 0.04048 + 4 * 0.004445)
    assert "Fargate $0.04048/vCPU-hour" in cost.basis


def test_spot_is_priced_at_its_own_rate():
    usage = {"backend": "ecs", "vcpu_s": 3600.0, "memory_mib": 1024, "capacity_provider": "FARGATE_SPOT"}
    assert step_cost(usage, 1, PRICES).usd == pytest.approx(0.01334 + 0.001465)
    batch = {"backend": "batch", "vcpu_s": 3600.0, "memory_mib": 1024, "spot": True}
    assert step_cost(batch, 1, PRICES).usd == pytest.approx(0.0168)
    assert step_cost({**batch, "spot": False}, 1, PRICES).usd == pytest.approx(0.048)


def test_a_gpu_step_costs_gpu_hours_of_the_configured_instance():
    usage = {"backend": "batch", "vcpu_s": 7200.0, "gpu_s": 1800.0, "memory_mib": 16384, "spot": False}
    prices = PriceSettings(gpu_type="g6.xlarge", gpu_hour=0.8048)
    cost = step_cost(usage, 4, prices)
    assert cost.usd == pytest.approx(0.5 * 0.8048) and cost.basis.startswith("g6.xlarge on-demand")


def test_nothing_ran_costs_nothing():
    assert step_cost(None, 1, PRICES) is None and step_cost({"vcpu_s": 0.0}, 1, PRICES) is None


def test_prices_come_from_the_settings_file_and_env(tmp_path, monkeypatch):
    from mlbatch.settings import load_settings

    path = tmp_path / "mlbatch.toml"
    path.write_text("[prices]\nvcpu_hour = 0.05\ngpu_type = 'g5.2xlarge'\n")
    monkeypatch.setenv("MLBATCH_PRICES_GPU_HOUR", "1.212")
    prices = load_settings(path).prices
    assert (prices.vcpu_hour, prices.gpu_type, prices.gpu_hour, prices.gb_hour) == (0.05, "g5.2xlarge", 1.212, 0.004445)


def test_advice_names_the_peak_the_budget_and_a_size_that_fits():
    uses = [StepUse(peak, 3072) for peak in (250, 310, 290)]
    assert advice(uses, 3072) == "peak 310 MiB of 3072 MiB over 3 runs: `memory: 512Mi` would do"
    assert advice([StepUse(1900, 2048)], 2048) == ("peak 1900 MiB of 2048 MiB over 1 run: close to the budget, "
                                                   "`memory: 3Gi` gives it room")
    assert advice([StepUse(700, 1024)], 1024) is None  # fits: 700 x 1.25 = 875 needs 1Gi
    assert advice([], 1024) is None


def test_advice_after_oom_growth_says_what_it_grew_to():
    text = advice([StepUse(300, 1024), StepUse(1500, 2048)], 1024)
    assert text.startswith("grew to 2048 MiB after running out of memory (spec: 1024 MiB); peak 1500 MiB over 2 runs")
    assert "`memory: 2Gi`" in text


def test_the_chart_has_one_point_per_run_and_no_script():
    svg = line_chart("ensemble auc", [Point("r1", 0.91), Point("r2", 0.93), Point("r3", 0.92)], test_id="metric-chart")
    assert svg.count("<circle") == 3 and "<script" not in svg and "http" not in svg.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "<title>r2: 0.93</title>" in svg
    assert "no runs" in line_chart("cost", [])


def _record(run_id: str, peak: float, auc: float, hours_ago: int) -> dict:
    start = datetime(2026, 1, 2, tzinfo=timezone.utc) - timedelta(hours=hours_ago)
    usage = {"backend": "local", "vcpu_s": 10.0, "gpu_s": 0.0, "memory_mib": 3072, "spot": False}
    return {"run_id": run_id, "state": "success", "trigger": "manual", "start": start, "end": start + timedelta(seconds=42),
            "tasks": [
                {"task_id": "train", "state": "success", "try_number": 1, "duration_s": 12.5, "summary": {
                    "shard_count": 5, "shards_run": [0, 1, 2, 3, 4], "cache_hit": False, "peak_rss_mib": peak,
                    "usage": usage, "metrics": {"auc": auc}, "uri": "/a/train/k"}},
                {"task_id": "ensemble", "state": "success", "try_number": 2, "duration_s": 3.0, "summary": {
                    "shard_count": 1, "shards_run": [], "cache_hit": True, "peak_rss_mib": 0.0, "usage": None,
                    "metrics": {"auc": auc}, "uri": "/a/ensemble/k", "mlflow": {"page": "file:///m/#/runs/1"}}}]}


def test_run_views_from_the_real_example_spec():
    steps = resolved_steps(str(PROJECT / "dags" / "churn_training.py"))
    assert steps["train"].memory_mib == 3072 and steps["ensemble"].gate.rule == "auc >= 0.8"
    assert gated_metric(steps) == ("ensemble", "auc")
    runs = [run_view("churn_training", _record(f"r{i}", peak, 0.9, i), steps, PRICES)
            for i, peak in enumerate((300, 310))]
    train, ensemble = runs[0].steps
    assert (train.shards, train.shards_run, train.cache_hit, train.peak_mib, train.budget_mib) == (5, 5, False, 300, 3072)
    assert train.cost.usd == pytest.approx(10 / 3600 * 0.04048 + 3 * 10 / 3600 * 0.004445)
    assert (ensemble.cache_hit, ensemble.cost, ensemble.gate, ensemble.verdict) == (True, None, "auc >= 0.8", "passed")
    assert ensemble.mlflow_page == "file:///m/#/runs/1" and runs[0].duration_s == 42
    assert runs[0].cost_usd == pytest.approx(train.cost.usd, abs=1e-6)
    assert step_advice(runs, steps) == {"train": "peak 310 MiB of 3072 MiB over 2 runs: `memory: 512Mi` would do"}


def test_a_failing_gate_says_why(tmp_path):
    steps = resolved_steps(str(PROJECT / "dags" / "churn_training.py"))
    view = run_view("churn_training", _record("r", 300, 0.7, 0), steps, PRICES)
    assert view.steps[1].verdict == "auc 0.7 is below the minimum 0.8"


def test_an_unreadable_loader_gives_no_steps(tmp_path):
    (tmp_path / "x.py").write_text("dag = None\n")
    assert resolved_steps(str(tmp_path / "x.py")) == {} and resolved_steps(str(tmp_path / "gone.py")) == {}


def test_a_flat_series_is_a_level_line_with_one_label():
    svg = line_chart("auc", [Point("r1", 0.8352), Point("r2", 0.8352)])
    assert svg.count(">0.8352<") == 1 and svg.count('cy="80.0"') == 2  # both points mid-height


def test_costs_read_in_dollars():
    from mlbatch.ui.page import usd

    assert [usd(v) for v in (0, 0.00004, 0.00187, 12.345)] == ["$0", "<$0.0001", "$0.0019", "$12.35"]
