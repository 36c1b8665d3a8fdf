"""Many batches at once on one real stack (PostgreSQL, LocalExecutor, scheduler, triggerer) against AWS.

Sizes a 2-CPU machine affords: a handful of batches, each one AWS Batch step that waits in the
triggerer. What is checked is correctness under load, never speed:
- several batches triggered together all finish, each step's job submitted once;
- the scheduler and triggerer stopped and started again while steps wait: every waiting step
  resumes and nothing is submitted twice;
- two runs of the same batch at once compute the step's cache key once: one job for both.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.integration.airflow_run import write_batch
from tests.integration.airflow_stack import PROJECT, metadata_db, stack_env, standalone, wait_for
from tests.integration.conftest import aws_env

pytestmark = pytest.mark.slow
FLEET = [f"fleet_{i}" for i in range(4)]


@pytest.fixture(scope="module")
def site(tmp_path_factory, aws):
    """A dags folder of small Batch batches, their settings and the stand-in's env; deployed once."""
    root = tmp_path_factory.mktemp("many")
    dags = root / "dags"
    (dags / "specs").mkdir(parents=True)
    for i, name in enumerate([*FLEET, "twin"]):
        write_batch(dags, name, f"""
            defaults: {{retries: 0, backend: batch}}
            steps:
              remote: {{run: check.sleep, params: {{seconds: {3 + i % 2}}}}}
        """)
    env = aws_env(aws, MLBATCH_BATCH_POLL_INTERVAL="3s")
    deployed = subprocess.run([sys.executable, "-m", "mlbatch", "deploy", "--specs", str(dags / "specs")],
                              env={**os.environ, **env}, cwd=PROJECT, capture_output=True, text=True)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    with metadata_db() as database:
        yield stack_env(root, dags, database, env)


def _submitted(dag_id: str) -> list[str]:
    """Ids of the top-level Batch jobs submitted for `dag_id`'s step (array children left out)."""
    from moto.batch.models import batch_backends

    return [job.job_id for job in batch_backends["123456789012"]["us-east-1"]._jobs.values()
            if job.job_name.startswith(f"{dag_id}__remote") and ":" not in job.job_id]


def _trigger(stack, dag_id: str) -> str:
    stack.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    return stack.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})["dag_run_id"]


def _state(stack, dag_id: str, run_id: str, task: str | None = None) -> str:
    """The run's (or its task's) state; '' while the API server is too busy to answer in time."""
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}" + (f"/taskInstances/{task}" if task else "")
    try:
        return stack.api("GET", path)["state"] or ""
    except OSError:  # a timeout on a loaded 2-CPU machine: ask again at the next look
        return ""


def _listed(stack, dag_ids: list[str]) -> bool:
    found = {dag["dag_id"] for dag in stack.api("GET", "/api/v2/dags?limit=100")["dags"]}
    return set(dag_ids) <= found


def _logs(stack, dag_ids: list[str]) -> str:
    """The task and trigger logs of these batches' runs, to say why a step failed."""
    return "\n".join(f"== {log.relative_to(stack.home)}\n{log.read_text()[-3000:]}"
                     for dag_id in dag_ids for log in sorted((stack.home / "logs").glob(f"dag_id={dag_id}/**/*.log")))


def test_waiting_steps_survive_a_restart_of_the_scheduler_and_triggerer(site, aws):
    aws.runner.hold()  # every job waits in RUNNABLE, as in a queue without capacity
    try:
        with standalone(site) as stack:
            assert wait_for(lambda: _listed(stack, FLEET), within_s=180), "the batches were never parsed"
            runs = {dag_id: _trigger(stack, dag_id) for dag_id in FLEET}
            assert wait_for(lambda: all(_state(stack, d, r, "remote") == "deferred" for d, r in runs.items()),
                            within_s=240), "not every step handed its wait to the triggerer"
        # the stack is down (Ctrl-C): the jobs run and end while nothing of Airflow is up
        aws.runner.release()
        assert wait_for(lambda: all(_submitted(d) for d in FLEET), within_s=30)
        with standalone(site) as stack:
            assert wait_for(lambda: all(_state(stack, d, r) in ("success", "failed") for d, r in runs.items()),
                            within_s=300, every_s=3.0), "a waiting step never resumed after the restart"
            states = {d: _state(stack, d, r) for d, r in runs.items()}
            assert states == {d: "success" for d in FLEET}, _logs(stack, [d for d in FLEET if states[d] != "success"])
    finally:
        aws.runner.release()
    assert {d: len(_submitted(d)) for d in FLEET} == {d: 1 for d in FLEET}  # nothing submitted twice


def test_two_runs_of_one_batch_at_once_submit_one_job(site):
    with standalone(site) as stack:
        assert wait_for(lambda: _listed(stack, ["twin"]), within_s=180), "the batch was never parsed"
        runs = [_trigger(stack, "twin"), _trigger(stack, "twin")]
        assert wait_for(lambda: all(_state(stack, "twin", r) in ("success", "failed") for r in runs),
                        within_s=300, every_s=3.0), "the two runs never finished"
        assert [_state(stack, "twin", r) for r in runs] == ["success", "success"]
    assert len(_submitted("twin")) == 1  # the same cache key: the second run reattached or hit the cache
