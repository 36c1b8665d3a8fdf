"""Nothing left running: the sweeper removes what a step's task instance can no longer stop.

- docker: a task process running a step through the docker backend is SIGKILLed mid-step; its
  container runs on. Its task instance is a real one, of a real Airflow run that has ended
  (`airflow dags test` of a one-step batch): one real run of the `mlbatch_sweeper` DAG, its task
  asking the API server through get_task_states, finds it ended and removes the container. A
  container of a run that Airflow does not know (another deployment's) is left alone.
- AWS Batch, on the stand-in (jobs run as real containers): a step submitted as a deferred step
  does before it defers, its task instance then marked failed before its trigger started. One
  sweep, fed that state through the same TaskStates function the task uses, terminates the job.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.integration.airflow_run import airflow, dags_test, migrate_db, write_batch
from tests.integration.airflow_stack import wait_for

pytestmark = [pytest.mark.containers, pytest.mark.slow]

PROJECT = Path(__file__).resolve().parents[2]

# The task process: one docker-backend step of check.sleep, run as the operator runs it.
TASK = """
import sys, uuid
from mlbatch.backends.docker import DockerBackend
from mlbatch.backends.jobs import JobRequest
from mlbatch.backends.slots import LocalSlots
from mlbatch.settings import DockerSettings
from workers import wire

image, root, dag, run = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
step = wire.step_request(worker="check.sleep", params={"seconds": 600}, inputs={}, output=root + "/" + dag + "/nap/k",
                         shard_count=1)
request = JobRequest(name=dag + ".nap", image=image, command=wire.run_command(step), memory_mib=256,
                     env={"MLBATCH_ARTIFACTS": root, "MLBATCH_TRY_NUMBER": "1"}, identity=uuid.uuid4().hex,
                     tags={"dag": dag, "step": "nap", "run": run, "try": "1"})
DockerBackend(log=print, settings=DockerSettings(), slots=LocalSlots(2, root + "/../slots")).run(request)
"""


def _containers(docker_client, dag: str, run: str | None = None) -> list:
    labels = [f"mlbatch.dag={dag}", *([f"mlbatch.run={run}"] if run else [])]
    return docker_client.containers.list(all=True, filters={"label": labels})


def _ended_run(dags: Path, dag: str) -> str:
    """The run id of one real, ended Airflow run of a one-step batch `dag` (its step: nap)."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    write_batch(dags, dag, "steps:\n  nap: {run: check.noop}\n")
    done = dags_test(dags, dag)
    assert done.returncode == 0, done.output[-4000:]
    with create_session() as session:
        [run] = session.query(DagRun).filter(DagRun.dag_id == dag).all()
        return run.run_id


def _killed_mid_step(docker_client, image: str, root: Path, dag: str, run: str) -> object:
    """A task process running a docker-backend step of `dag`, SIGKILLed once its container runs: the container."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT / "plugins"), str(PROJECT)])}
    task = subprocess.Popen([sys.executable, "-c", textwrap.dedent(TASK), image, str(root), dag, run], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: any(c.status == "running" for c in _containers(docker_client, dag, run)),
                        within_s=120, every_s=0.3)
    finally:
        task.send_signal(signal.SIGKILL)  # no cleanup runs: the container is left behind
        task.wait(30)
    [left] = _containers(docker_client, dag, run)
    left.reload()
    assert left.status == "running"
    return left


def test_a_step_container_of_a_killed_task_process_is_gone_after_one_sweep(docker_client, worker_image, tmp_path):
    migrate_db()
    dag = f"sweep_victim_{uuid.uuid4().hex[:8]}"
    run = _ended_run(tmp_path / "dags", dag)
    root = tmp_path / "artifacts"
    root.mkdir()
    left = _killed_mid_step(docker_client, worker_image, root, dag, run)
    foreign = _killed_mid_step(docker_client, worker_image, root, dag, "manual__of_another_airflow")
    try:
        done = airflow(PROJECT / "dags", "dags", "test", "mlbatch_sweeper", "-c",
                       json.dumps({"grace_seconds": 0, "only_dags": [dag]}), timeout=300)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-4000:]
        assert f"container {left.id[:12]} (running) stopped: task instance {dag}.nap (run {run}) " \
               "is success, not running" in output, output[-4000:]
        assert "docker: 2 step resources, 1 orphaned, 1 of runs this Airflow does not know" in output
        assert _containers(docker_client, dag, run) == []
        foreign.reload()
        assert foreign.status == "running"
    finally:
        for container in _containers(docker_client, dag):
            container.remove(force=True)


def _sleep_request(dag: str, run: str, **fields):
    from mlbatch.backends.jobs import JobRequest
    from tests.integration.aws_stand_in import BUCKET
    from workers.wire import run_command, step_request

    step = step_request(worker="check.sleep", params={"seconds": 600}, inputs={}, output=f"s3://{BUCKET}/{dag}/nap",
                        shard_count=1)
    return JobRequest(name=f"{dag}.nap", image="mlbatch-worker:cpu", command=run_command(step), memory_mib=512,
                      env={"MLBATCH_TRY_NUMBER": "1"}, identity=uuid.uuid4().hex,
                      tags={"dag": dag, "step": "nap", "run": run, "try": "1"}, **fields)


def test_a_batch_job_of_a_step_marked_failed_before_its_trigger_started_is_terminated(aws):
    from mlbatch.backends.aws.conventions import CANCEL_REASON
    from mlbatch.backends.aws_batch.backend import AwsBatchBackend
    from mlbatch.backends.aws_batch.client import BatchJobs
    from mlbatch.backends.aws_batch.sweep import BatchSweepSource
    from mlbatch.sweep.run import sweep
    from tests.integration.aws_stand_in import QUEUES

    dag = f"sweep_batch_{uuid.uuid4().hex[:8]}"
    handle = AwsBatchBackend(log=lambda line: None).submit(_sleep_request(dag, "scheduled__1"))  # what execute() does before it defers
    batch = aws.client("batch")

    def status() -> str:
        return batch.describe_jobs(jobs=[handle.job_id])["jobs"][0]["status"]

    assert wait_for(lambda: status() == "RUNNING", within_s=120, every_s=0.3)
    # Airflow's answer for that task instance, as get_task_states gives it: marked failed
    asked: list[tuple] = []

    def states(dag_id, run_ids, task_ids):
        asked.append((dag_id, list(run_ids), list(task_ids)))
        return {"scheduled__1": {"nap": "failed"}}

    lines: list[str] = []
    report = sweep([BatchSweepSource(BatchJobs("aws_default", None), QUEUES.values())], states, log=lines.append,
                   grace_s=0, only_dags=[dag])
    assert asked == [(dag, ["scheduled__1"], ["nap"])]
    assert [o.resource.id for o in report.stopped] == [handle.job_id], lines
    assert wait_for(lambda: status() == "FAILED", within_s=60, every_s=0.3)
    job = batch.describe_jobs(jobs=[handle.job_id])["jobs"][0]
    assert job["statusReason"] == (f"{CANCEL_REASON} (mlbatch sweeper: task instance {dag}.nap (run scheduled__1) "
                                   "is failed, not running)")


def test_an_ecs_task_of_a_step_whose_task_instance_was_cleared_is_stopped(aws):
    from mlbatch.backends.aws.conventions import CANCEL_REASON
    from mlbatch.backends.ecs.backend import EcsBackend
    from mlbatch.backends.ecs.client import EcsTasks
    from mlbatch.backends.ecs.sweep import EcsSweepSource
    from mlbatch.sweep.run import sweep

    dag = f"sweep_ecs_{uuid.uuid4().hex[:8]}"
    handle = EcsBackend(log=lambda line: None).submit(_sleep_request(dag, "manual__2", vcpu=0.25))
    ecs = aws.client("ecs")

    def task() -> dict:
        return ecs.describe_tasks(cluster="mlbatch", tasks=handle.arns)["tasks"][0]

    assert wait_for(lambda: task()["lastStatus"] == "RUNNING", within_s=120, every_s=0.3)
    report = sweep([EcsSweepSource(EcsTasks("aws_default", None), "mlbatch")],
                   lambda dag_id, runs, tasks: {"manual__2": {"nap": None}},  # cleared: no state yet
                   log=lambda line: None, grace_s=0, only_dags=[dag])
    assert [o.resource.id for o in report.stopped] == handle.arns
    assert wait_for(lambda: task()["lastStatus"] == "STOPPED", within_s=60, every_s=0.3)
    assert task()["stoppedReason"] == (f"{CANCEL_REASON} (mlbatch sweeper: task instance {dag}.nap (run manual__2) "
                                       "is not started, not running)")
