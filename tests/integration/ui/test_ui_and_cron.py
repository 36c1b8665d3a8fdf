"""The web UI in a real browser, and cron schedules, on one real stack (`python -m mlbatch up`).

`airflow dags trigger churn_training` (the example batch, smaller data), then headless Chromium
logs in, sees every step of that run green in the DAG's grid, finds the worker's own output in a
step's log and a broken spec among the import errors. Meanwhile the scheduler runs a batch whose
spec says `schedule: "* * * * *"` each minute by itself: nobody triggers it. And data-aware
batches: that training run publishes its model as an Airflow asset event, and the scheduler then
starts churn_scoring by itself, which scores with that very model. The example specs run
unchanged but for smaller data (their schedules and gates are as shipped).
"""
from __future__ import annotations

import os
import re
import shutil
from datetime import datetime, timezone

import pytest
from playwright.sync_api import expect

from tests.integration.airflow_stack import PROJECT, wait_for
from tests.integration.browser import VIEWPORT, png_size
from workers import artifacts

pytestmark = pytest.mark.slow
STEPS = ["features", "train", "train_mlp", "ensemble", "score"]
BROKEN_MESSAGE = "step 'tick', field 'run': unknown worker 'check.nope'. Fix: did you mean 'check.noop'?"


def _screenshot(page, tmp_path_factory, name: str) -> None:
    """Save what the browser shows into the test's tmp dir (and into MLBATCH_SCREENSHOTS, e.g. docs)."""
    path = tmp_path_factory.getbasetemp() / name
    page.screenshot(path=path)
    assert png_size(path) == (VIEWPORT["width"], VIEWPORT["height"]) and path.stat().st_size > 10_000
    if target := os.environ.get("MLBATCH_SCREENSHOTS"):  # refresh the README's: MLBATCH_SCREENSHOTS=docs
        shutil.copy(path, PROJECT / target / name)


def test_the_grid_shows_every_step_of_the_triggered_run_green(stack, training_run, page, tmp_path_factory):
    page.goto(f"{stack.url}/dags/churn_training")
    for step in STEPS:
        page.get_by_test_id(f"grid-{training_run}-{step}").hover()  # the cell's tooltip says its state
        tooltip = page.get_by_role("tooltip").filter(has_text=f"Task ID: {step}")
        expect(tooltip).to_contain_text("State: Success")
        expect(tooltip).to_contain_text(f"Run ID: {training_run}")
        page.mouse.move(VIEWPORT["width"] - 1, VIEWPORT["height"] - 1)  # the tooltip covers the next cell
        expect(page.get_by_role("tooltip")).to_have_count(0)
    _screenshot(page, tmp_path_factory, "ui-grid.png")


def test_a_step_log_shows_the_workers_own_lines(stack, training_run, page, tmp_path_factory):
    page.goto(f"{stack.url}/dags/churn_training/runs/{training_run}/tasks/train")  # opens on its log
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    page.get_by_role("textbox", name="Search logs...").fill("mlbatch-worker done")
    for shard in ("0/2", "1/2"):  # printed by each fold's worker process (workers/__main__.py)
        line = page.get_by_text(re.compile(rf"\[shard {shard}\] mlbatch-worker done: train\.gbdt shard {shard} try 1 "
                                           r"in [\d.]+s counts=\{\"train_rows\": 10000"))
        expect(line).to_be_visible()
    _screenshot(page, tmp_path_factory, "ui-step-log.png")


def test_a_broken_spec_is_listed_among_the_import_errors(stack, page):
    page.goto(stack.url)
    page.get_by_role("button", name=re.compile(r"\d+ Dag Import Errors?")).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name=re.compile(r"broken_spec\.py")).click()  # unfolds its error
    expect(dialog).to_contain_text("specs/broken_spec.yaml:3: " + BROKEN_MESSAGE)
    expect(dialog.get_by_role("button", name=re.compile(r"\.py"))).to_have_count(1)  # the others load


def test_the_scheduler_runs_a_cron_batch_by_itself(stack, cron_unpaused_at):
    path = "/api/v2/dags/every_minute/dagRuns?order_by=-run_after"

    def ticked_since_unpaused():  # a minute that began after the unpause: cron firing, not a replay
        return [run for run in stack.api("GET", path)["dag_runs"]
                if datetime.fromisoformat(run["run_after"]) > cron_unpaused_at and run["state"] == "success"]
    assert wait_for(ticked_since_unpaused, within_s=240), "the scheduler started no run on the minute"

    runs = stack.api("GET", path)["dag_runs"]
    for run in runs:  # every run the scheduler's own, at a whole minute (Airflow's CronTriggerTimetable)
        assert (run["run_type"], run["triggered_by"]) == ("scheduled", "timetable"), run
        assert run["logical_date"] == run["run_after"] and datetime.fromisoformat(run["run_after"]).second == 0, run
        assert run["dag_run_id"] == f"scheduled__{datetime.fromisoformat(run['run_after']).isoformat()}"
    run = ticked_since_unpaused()[0]["dag_run_id"]
    tick = stack.api("GET", f"/api/v2/dags/every_minute/dagRuns/{run}/taskInstances/tick")
    assert tick["state"] == "success"


def _runs(stack, dag_id: str) -> list[dict]:
    return stack.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=-id")["dag_runs"]


def test_a_committed_model_triggers_the_scoring_batch(stack, training_run):
    [asset] = stack.api("GET", "/api/v2/assets?name_pattern=churn_training.ensemble")["assets"]
    assert asset["uri"] == "x-mlbatch://output/churn_training/ensemble" and asset["group"] == "mlbatch"
    assert [(t["dag_id"], t["task_id"]) for t in asset["producing_tasks"]] == [("churn_training", "ensemble")]
    assert [d["dag_id"] for d in asset["scheduled_dags"]] == ["churn_scoring"]  # what the UI's asset view shows
    [event] = stack.api("GET", f"/api/v2/assets/events?asset_id={asset['id']}")["asset_events"]
    assert event["source_run_id"] == training_run
    root = str(stack.home.parent / "artifacts")
    model = artifacts.read_json(artifacts.latest_pointer_uri(root, "churn_training", "ensemble"))
    assert event["extra"]["uri"] == model["uri"] and event["extra"]["cache_key"] in model["uri"]
    assert event["extra"]["manifest"] == model["uri"] + "/manifest.json"
    assert event["extra"]["metrics"]["auc"] >= 0.80 and event["extra"]["cache_hit"] is False

    def asset_triggered():
        return [run for run in _runs(stack, "churn_scoring") if run["run_type"] == "asset_triggered"]
    scoring = wait_for(asset_triggered, within_s=120)
    assert len(scoring) == 1, "the scheduler did not start churn_scoring after the new model"
    scoring_path = f"/api/v2/dags/churn_scoring/dagRuns/{scoring[0]['dag_run_id']}"
    triggered_by = stack.api("GET", f"{scoring_path}/upstreamAssetEvents")["asset_events"]
    assert [e["id"] for e in triggered_by] == [event["id"]]
    assert wait_for(lambda: stack.api("GET", scoring_path)["state"] in ("success", "failed"), within_s=300)
    assert stack.api("GET", scoring_path)["state"] == "success"
    score = stack.api("GET", f"{scoring_path}/taskInstances/score/xcomEntries/return_value")["value"]
    manifest = artifacts.read_json(artifacts.step_manifest_uri(score["uri"]))
    assert manifest["cache"]["inputs"]["params.model"] == "latest:" + model["uri"]  # scored with that model
