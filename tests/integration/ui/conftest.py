"""One real stack for the UI's browser tests: both modules of this folder use it (a stack takes minutes
to start; fixtures in a conftest are shared, fixtures imported into two modules are not)."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from playwright.sync_api import expect

from tests.integration.airflow_run import write_batch
from tests.integration.airflow_stack import airflow_stack, smaller_examples, wait_for
from tests.integration.browser import chromium_or_skip, headless_chromium

RUN_ID = "ui_check"
CRON_SPEC = """
    description: Runs every minute; the scheduler starts each run
    schedule: "* * * * *"
    defaults: {retries: 0}
    steps:
      tick: {run: check.noop}
"""
BROKEN_SPEC = """
    steps:
      tick: {run: check.nope}
"""


@pytest.fixture(scope="package")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    smaller_examples(root / "dags")
    write_batch(root / "dags", "every_minute", CRON_SPEC)
    write_batch(root / "dags", "broken_spec", BROKEN_SPEC)
    with airflow_stack(root, root / "dags", {"MLBATCH_ARTIFACTS": str(root / "artifacts")}) as running:
        def listed():
            return {"churn_training", "churn_scoring", "every_minute"} <= {dag["dag_id"] for dag in running.api("GET", "/api/v2/dags")["dags"]}
        assert wait_for(listed, within_s=120), "the dag-processor never listed the batches"
        yield running


@pytest.fixture(scope="package")
def cron_unpaused_at(stack) -> datetime:
    """Unpause the cron batch (new DAGs start paused, as in production) and say when."""
    unpaused_at = datetime.now(timezone.utc)
    stack.api("PATCH", "/api/v2/dags/every_minute", {"is_paused": False})
    return unpaused_at


@pytest.fixture(scope="package")
def training_run(stack, cron_unpaused_at) -> str:
    """A run of churn_training triggered from the CLI, waited for through the REST API. The cron
    batch is unpaused first, so that its minutes tick while this run and the browser work; so is
    churn_scoring, which waits for its model (a paused DAG is not queued by an asset event)."""
    for dag_id in ("churn_scoring", "churn_training"):
        stack.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    return run_to_success(stack, "churn_training", RUN_ID)


def run_to_success(stack, dag_id: str, run_id: str) -> str:
    """Trigger a run from the CLI, wait for it through the REST API, and hold that it succeeded."""
    triggered = stack.cli("dags", "trigger", dag_id, "--run-id", run_id)
    assert triggered.returncode == 0, triggered.stdout + triggered.stderr
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}"
    assert wait_for(lambda: stack.api("GET", path)["state"] in ("success", "failed"), within_s=300)
    assert stack.api("GET", path)["state"] == "success"
    return run_id


@pytest.fixture(scope="package")
def page(stack):
    """A logged-in browser page on the stack's UI."""
    with headless_chromium(chromium_or_skip()) as browser:
        page = browser.new_page()
        page.set_default_timeout(30_000)
        expect.set_options(timeout=30_000)  # bounds for the UI's own fetches, not timings
        page.goto(stack.url)
        expect(page).to_have_url(re.compile(r"/auth/login"))  # the UI asks who we are first
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(stack.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
        yield page
