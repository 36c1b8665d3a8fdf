"""The mlbatch page in Airflow's UI, in a real browser, after real runs of churn_training.

The stack, the logged-in Chromium page and the first run of churn_training are those of
test_ui_and_cron (one stack for both, from this folder's conftest): the page then shows that run's steps with the numbers
its XCom summaries hold, the chart gets one point per run after a second run, the advice names the
measured peak, the task view links back to the page, and nothing is served without a session.
"""
from __future__ import annotations

import re
import urllib.error

import pytest
from playwright.sync_api import expect

from mlbatch.ui.advice import StepUse, advice
from tests.integration.airflow_stack import http
from tests.integration.ui.conftest import run_to_success
from tests.integration.ui.test_ui_and_cron import STEPS, _screenshot

pytestmark = pytest.mark.slow
SECOND_RUN = "ui_page_again"
TRAIN_BUDGET_MIB = 3072  # dags/specs/churn_training.yaml: train's resources.memory


def _summary(stack, run_id: str, step: str) -> dict:
    return stack.api("GET", f"/api/v2/dags/churn_training/dagRuns/{run_id}/taskInstances/{step}/"
                            "xcomEntries/return_value")["value"]


@pytest.fixture(scope="module")
def second_run(stack, training_run) -> str:
    """Another run of churn_training (its steps hit the cache of the first): a second point on the chart."""
    return run_to_success(stack, "churn_training", SECOND_RUN)


def test_without_a_session_the_page_and_its_api_refuse(stack, training_run, page):
    for path in ("/mlbatch/", "/mlbatch/batches/churn_training", f"/mlbatch/batches/churn_training/runs/{training_run}",
                 "/mlbatch/api/batches/churn_training"):
        for token in (None, "not-a-token"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                http("GET", stack.url + path, token=token)
            assert refused.value.code in (401, 403), (path, token, refused.value.code)
    assert http("GET", stack.url + "/mlbatch/api/batches/churn_training", token=stack.token)["dag_id"] == "churn_training"
    # The browser without its session (one Playwright per thread: the logged-in browser's, its cookies put back)
    session = page.context.cookies()
    page.context.clear_cookies()
    try:
        visit = page.context.new_page()
        response = visit.goto(f"{stack.url}/mlbatch/batches/churn_training/runs/{training_run}")
        assert response.status in (401, 403)
        expect(visit.get_by_test_id("steps")).to_have_count(0)
        visit.close()
    finally:
        page.context.add_cookies(session)


def test_the_page_shows_each_step_of_the_run_with_its_numbers(stack, training_run, page, tmp_path_factory):
    page.goto(f"{stack.url}/mlbatch/batches/churn_training/runs/{training_run}")
    for step in STEPS:
        expect(page.get_by_test_id(f"step-{step}")).to_contain_text("success")
    train = _summary(stack, training_run, "train")
    row = page.get_by_test_id("step-train")
    expect(row).to_contain_text("2/2 run")
    expect(row).to_contain_text("computed")
    expect(row).to_contain_text(f"{train['peak_rss_mib']:.0f} / {TRAIN_BUDGET_MIB} MiB")  # the bar's numbers
    expect(row).to_contain_text(f"{train['usage']['vcpu_s']:g}")
    expect(row).to_contain_text(re.compile(r"\$0\.\d{4}|<\$0\.0001"))
    expect(row.get_by_role("link", name="log")).to_have_attribute(
        "href", f"/dags/churn_training/runs/{training_run}/tasks/train")
    ensemble = _summary(stack, training_run, "ensemble")
    gate = page.get_by_test_id("step-ensemble")
    expect(gate).to_contain_text(f"auc={ensemble['metrics']['auc']:.4g}")
    expect(gate).to_contain_text("auc >= 0.8: passed")
    _screenshot(page, tmp_path_factory, "mlbatch-page-run.png")


def test_after_two_runs_the_chart_has_a_point_per_run_and_the_advice_the_measured_peak(
        stack, training_run, second_run, page, tmp_path_factory):
    page.goto(f"{stack.url}/mlbatch/batches/churn_training")
    for run_id in (training_run, second_run):
        expect(page.get_by_test_id(f"run-{run_id}")).to_contain_text("success")
    runs = stack.api("GET", "/api/v2/dags/churn_training/dagRuns")["total_entries"]
    expect(page.get_by_test_id("metric-chart").locator("circle")).to_have_count(runs)
    expect(page.get_by_test_id("cost-chart").locator("circle")).to_have_count(runs)
    peaks = [_summary(stack, run, "train") for run in (training_run, second_run)]
    computed = [StepUse(s["peak_rss_mib"], s["usage"]["memory_mib"]) for s in peaks if not s["cache_hit"]]
    expected = advice(computed, TRAIN_BUDGET_MIB)
    assert expected and f"peak {max(u.peak_mib for u in computed):.0f} MiB of {TRAIN_BUDGET_MIB} MiB" in expected
    expect(page.get_by_test_id("advice-train")).to_have_text(f"train: {expected}")
    _screenshot(page, tmp_path_factory, "mlbatch-page-batch.png")


def test_the_nav_shows_the_page_and_each_task_links_back(stack, training_run, page):
    [plugin] = [p for p in stack.api("GET", "/api/v2/plugins")["plugins"] if p["name"] == "mlbatch"]
    assert [view["url_route"] for view in plugin["external_views"]] == ["mlbatch"]
    links = stack.api("GET", f"/api/v2/dags/churn_training/dagRuns/{training_run}/taskInstances/train/links")
    assert links["extra_links"]["mlbatch page"].endswith(f"/mlbatch/batches/churn_training/runs/{training_run}#train")
    page.goto(f"{stack.url}/plugin/mlbatch")  # the nav entry: the page inside Airflow's UI
    frame = page.frame_locator("iframe")
    expect(frame.get_by_test_id("batch-churn_training")).to_contain_text("success")
