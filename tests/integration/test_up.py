"""`python -m mlbatch up`: Airflow's own UI and scheduler with our DAGs, for real.

One stack for the module: the UI lists the batches, "mark failed" on a running step
kills its worker, an AWS Batch step waits in the real triggerer (and "mark failed" there
terminates its job), and Ctrl-C stops every part of the stack. Artifacts live on the
local AWS stand-in's S3, so local and Batch steps share one artifact root.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import psutil
import pytest

from tests.integration.airflow_run import write_batch
from tests.integration.airflow_stack import PROJECT, airflow_stack, wait_for
from tests.integration.aws_stand_in import AwsStandIn
from tests.integration.slack_server import RecordingWebhook, slack_connection_env

pytestmark = pytest.mark.slow
SECRETS = {"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMIK7MDENGbPxRfiCYzSTACKKEY", "MLBATCH_API_TOKEN": "tok-5e4d3c2b1a09f8e7"}


@pytest.fixture(scope="module")
def stand_in(docker_client, worker_image):
    """The local AWS stand-in; artifacts live on its S3, so local and Batch steps share one root."""
    aws = AwsStandIn(docker_client, worker_image).start()
    try:
        yield aws
    finally:
        aws.stop()


@pytest.fixture(scope="module")
def webhook():
    with RecordingWebhook() as server:
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory, stand_in, webhook):
    root = tmp_path_factory.mktemp("up")
    dags = root / "dags"
    shutil.copytree(PROJECT / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    write_batch(dags, "kill_check", """
        defaults: {retries: 0}
        steps:
          slow: {run: check.sleep, params: {seconds: 300}}
    """)
    write_batch(dags, "leak_check", """
        alerts: {slack: slack_stack}
        defaults: {retries: 0}
        steps:
          leaky:
            run: check.fail
            params: {bad_input: true, print_env: [AWS_SECRET_ACCESS_KEY, MLBATCH_API_TOKEN]}
    """)
    write_batch(dags, "aws_deferred", """
        defaults: {retries: 0, backend: batch}
        steps:
          remote: {run: check.sleep, params: {seconds: 1}}
    """)
    settings = root / "mlbatch.toml"
    settings.write_text(stand_in.settings_text())
    # the triggers' first look comes one poll interval after the deferral: seconds, as in production
    env = {**stand_in.airflow_env(), "MLBATCH_SETTINGS": str(settings), "MLBATCH_BATCH_POLL_INTERVAL": "5s", **SECRETS,
           **slack_connection_env("slack_stack", webhook.url())}
    deployed = subprocess.run([sys.executable, "-m", "mlbatch", "deploy", "--specs", str(dags / "specs")],
                              env={**os.environ, **env}, cwd=PROJECT, capture_output=True, text=True)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    with airflow_stack(root, dags, env) as running:
        yield running


def test_the_ui_lists_the_batches(stack):
    def listed():
        dag_ids = {dag["dag_id"] for dag in stack.api("GET", "/api/v2/dags")["dags"]}
        return {"churn_training", "churn_scoring", "kill_check"} <= dag_ids
    assert wait_for(listed, within_s=120)  # the dag-processor parses the files in the background


def _worker_of(dag_id: str) -> psutil.Process | None:
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "workers run" in cmdline and f"/{dag_id}/" in cmdline:
            return process
    return None


def test_the_metadata_db_is_postgresql(stack):
    """The stack runs on PostgreSQL, as in production: the batches the UI lists are rows there."""
    import sqlalchemy

    assert stack.database.startswith("postgresql+psycopg2://")
    engine = sqlalchemy.create_engine(stack.database)
    try:
        with engine.connect() as db:
            dag_ids = set(db.execute(sqlalchemy.text("SELECT dag_id FROM dag")).scalars())
    finally:
        engine.dispose()
    assert {"churn_training", "kill_check", "aws_deferred"} <= dag_ids


def test_marking_a_running_step_failed_kills_its_worker(stack):
    stack.api("PATCH", "/api/v2/dags/kill_check", {"is_paused": False})
    run = stack.api("POST", "/api/v2/dags/kill_check/dagRuns", {"logical_date": None})
    worker = wait_for(lambda: _worker_of("kill_check"), within_s=120, every_s=1.0)
    assert worker is not None, "the step's worker never started"
    path = f"/api/v2/dags/kill_check/dagRuns/{run['dag_run_id']}/taskInstances/slow"
    stack.api("PATCH", path, {"new_state": "failed"})
    gone, alive = psutil.wait_procs([worker], timeout=60)
    assert alive == [], "the worker outlived its task"
    assert stack.api("GET", path)["state"] == "failed"


def test_secrets_stay_out_of_the_real_task_logs_and_the_alert(stack, webhook):
    stack.api("PATCH", "/api/v2/dags/leak_check", {"is_paused": False})
    run = stack.api("POST", "/api/v2/dags/leak_check/dagRuns", {"logical_date": None})
    path = f"/api/v2/dags/leak_check/dagRuns/{run['dag_run_id']}"
    assert wait_for(lambda: stack.api("GET", path)["state"] == "failed", within_s=180)
    assert wait_for(lambda: len(webhook.posts) >= 1, within_s=30)
    logs = list((stack.home / "logs").glob("dag_id=leak_check/**/*.log"))
    text = "\n".join(log.read_text() for log in logs)
    assert "AWS_SECRET_ACCESS_KEY=***" in text  # the worker printed it; the task log masked it
    everything = text + "\n".join(webhook.texts)
    for value in [*SECRETS.values(), "s3cr3tW3bh00kP4th"]:
        assert value not in everything
    assert len(webhook.posts) == 1 and "`bad_input`" in webhook.texts[0]


def _batch_job(name_prefix: str):
    from moto.batch.models import batch_backends

    jobs = [job for job in batch_backends["123456789012"]["us-east-1"]._jobs.values()
            if job.job_name.startswith(name_prefix) and ":" not in job.job_id]
    return max(jobs, key=lambda job: job.job_created_at) if jobs else None


def test_a_batch_step_waits_in_the_triggerer_and_mark_failed_terminates_its_job(stack, stand_in):
    stack.api("PATCH", "/api/v2/dags/aws_deferred", {"is_paused": False})
    path = "/api/v2/dags/aws_deferred/dagRuns/{}/taskInstances/remote"
    first = stack.api("POST", "/api/v2/dags/aws_deferred/dagRuns", {"logical_date": None})["dag_run_id"]
    assert wait_for(lambda: stack.api("GET", f"/api/v2/dags/aws_deferred/dagRuns/{first}")["state"] == "success",
                     within_s=180, every_s=1.0)
    logs = "\n".join(log.read_text() for log in (stack.home / "logs").glob(f"dag_id=aws_deferred/run_id={first}/**/*.log"))
    assert "submitted AWS Batch job" in logs and "[worker] sleeping 1s" in logs  # collected after the deferral
    assert "Trigger fired event" in logs  # the wait ran in the triggerer

    # Last in this module: the killed trigger's row id may be reused by the next run's trigger (SQLite).
    stand_in.runner.hold()  # the job waits in RUNNABLE, as in a queue without capacity
    try:
        second = stack.api("POST", "/api/v2/dags/aws_deferred/dagRuns", {"logical_date": None,
                                                                         "conf": {"cache": "refresh"}})["dag_run_id"]
        assert wait_for(lambda: stack.api("GET", path.format(second))["state"] == "deferred", within_s=180,
                         every_s=1.0), "the step never handed its wait to the triggerer"
        # Airflow calls a trigger's on_kill only once the triggerer runs it: wait for that
        trigger_logs = f"dag_id=aws_deferred/run_id={second}/**/*.trigger.*.log"
        assert wait_for(lambda: any("starting" in log.read_text() for log in (stack.home / "logs").glob(trigger_logs)),
                         within_s=120, every_s=0.5), "the triggerer never started the step's trigger"
        stack.api("PATCH", path.format(second), {"new_state": "failed"})
        job = _batch_job("aws_deferred__remote")
        assert wait_for(lambda: job.stop, within_s=60, every_s=0.5), "mark failed left the Batch job running"
        assert job.job_stopped_reason.startswith("mlbatch: cancelled")
    finally:
        stand_in.runner.release()


def test_ctrl_c_stops_every_part(stack):
    family = psutil.Process(stack.proc.pid).children(recursive=True)
    assert len(family) >= 4  # standalone and its parts
    stack.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    stack.proc.wait(timeout=60)
    gone, alive = psutil.wait_procs(family, timeout=30)
    assert alive == []
