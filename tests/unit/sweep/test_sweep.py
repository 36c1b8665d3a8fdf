"""The sweep rules, without Airflow or a backend: which step resources are orphans, and what a sweep stops."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mlbatch.backends.aws_batch.sweep import resource_of as batch_resource
from mlbatch.backends.docker.sweep import created_at, resource_of as container_resource
from mlbatch.backends.ecs.sweep import resource_of as ecs_resource
from mlbatch.sweep.resources import StepResource, orphans
from mlbatch.sweep.run import sweep

NOW = 1_800_000_000.0


def resource(step: str = "train", run: str = "r1", age_s: float = 600, dag: str = "churn") -> StepResource:
    return StepResource(kind="container", id=f"{dag}-{step}-{run}", dag=dag, step=step, run=run, created=NOW - age_s)


class States:
    """Airflow's answer, as get_task_states gives it; every question kept."""

    def __init__(self, known: dict[str, dict[str, dict[str, str | None]]]) -> None:
        self.known, self.asked = known, []

    def __call__(self, dag_id, run_ids, task_ids):
        self.asked.append((dag_id, list(run_ids), list(task_ids)))
        return self.known.get(dag_id, {})


@pytest.mark.parametrize("state", ["success", "failed", "up_for_retry", "upstream_failed", "scheduled", "queued",
                                   "restarting", None])
def test_a_resource_whose_task_instance_is_not_running_is_an_orphan(state):
    [orphan], _ = orphans([resource()], States({"churn": {"r1": {"train": state}}}), now=NOW, grace_s=300)
    assert orphan.reason == f"task instance churn.train (run r1) is {state or 'not started'}, not running"


@pytest.mark.parametrize("state", ["running", "deferred"])
def test_a_running_or_deferred_task_instance_keeps_its_resource(state):
    assert orphans([resource()], States({"churn": {"r1": {"train": state}}}), now=NOW, grace_s=300) == ([], [])


def test_a_resource_of_a_task_instance_its_run_no_longer_has_is_an_orphan():
    [orphan], _ = orphans([resource(step="renamed")], States({"churn": {"r1": {"train": "running"}}}), now=NOW)
    assert orphan.reason == "task instance churn.renamed (run r1) no longer exists"


def test_a_resource_of_a_run_this_airflow_does_not_know_is_left_to_the_deployment_that_started_it():
    other = resource(run="another_deployments_run")
    assert orphans([other], States({"churn": {"r1": {"train": "failed"}}}), now=NOW) == ([], [other])


def test_a_resource_younger_than_the_grace_period_is_left_and_not_even_asked_about():
    states = States({"churn": {"r1": {"train": "queued"}}})
    assert orphans([resource(age_s=299)], states, now=NOW, grace_s=300) == ([], [])
    assert states.asked == []


def test_one_question_per_batch_for_all_its_runs_and_steps():
    states = States({"churn": {"r1": {"train": "running", "score": "failed"}, "r2": {"train": "success"}},
                     "text": {"r9": {"embed": "running"}}})
    found, _ = orphans([resource("train", "r1"), resource("score", "r1"), resource("train", "r2"),
                     resource("embed", "r9", dag="text")], states, now=NOW)
    assert [o.resource.id for o in found] == ["churn-score-r1", "churn-train-r2"]
    assert states.asked == [("churn", ["r1", "r2"], ["score", "train"]), ("text", ["r9"], ["embed"])]


class Source:
    def __init__(self, name, resources, fail_list=False, fail_stop=()):
        self.name, self.resources, self.fail_list, self.fail_stop = name, resources, fail_list, set(fail_stop)
        self.stopped: list[tuple[str, str]] = []

    def list(self):
        if self.fail_list:
            raise ConnectionError("engine unreachable")
        return self.resources

    def stop(self, found, reason):
        if found.id in self.fail_stop:
            raise RuntimeError("denied")
        self.stopped.append((found.id, reason))


def test_a_sweep_stops_each_orphan_logs_why_and_goes_on_past_a_failing_source():
    lines: list[str] = []
    broken = Source("ecs", [], fail_list=True)
    docker = Source("docker", [resource("train", "r1"), resource("score", "r1"), resource("other", "r1", dag="x")],
                    fail_stop={"churn-score-r1"})
    report = sweep([broken, docker], States({"churn": {"r1": {"train": "failed", "score": "up_for_retry"}}}),
                   log=lines.append, grace_s=0, only_dags=["churn"], clock=lambda: NOW)
    assert docker.stopped == [("churn-train-r1", "mlbatch sweeper: task instance churn.train (run r1) is failed, "
                                                 "not running")]
    assert [o.resource.id for o in report.stopped] == ["churn-train-r1"]
    assert report.failed == ["ecs: could not list: engine unreachable",
                             "docker: container churn-score-r1 (unknown): could not stop: denied"]
    assert "docker: container churn-train-r1 (unknown) stopped: task instance churn.train (run r1) is failed, " \
           "not running" in lines


def test_backends_read_their_own_labels_and_tags_and_skip_what_is_not_a_step():
    labels = {"mlbatch.identity": "k", "mlbatch.dag": "churn", "mlbatch.step": "train", "mlbatch.run": "r1"}
    attrs = {"Id": "0123456789abcdef", "Created": "2026-12-02T13:45:01.123456789Z", "State": {"Status": "running"},
             "Config": {"Labels": labels}}
    assert container_resource(attrs) == StepResource(
        kind="container", id="0123456789ab", dag="churn", step="train", run="r1", status="running",
        created=datetime(2026, 12, 2, 13, 45, 1, 123456, tzinfo=timezone.utc).timestamp())
    assert container_resource({**attrs, "Config": {"Labels": {"mlbatch.identity": "k"}}}) is None
    tags = {"mlbatch:dag": "churn", "mlbatch:step": "train", "mlbatch:run": "r1"}
    job = batch_resource({"jobId": "j1", "status": "RUNNABLE", "createdAt": 1_700_000_000_500, "tags": tags}, "q")
    assert (job.id, job.created, job.where, job.status) == ("j1", 1_700_000_000.5, "q", "RUNNABLE")
    task = ecs_resource({"taskArn": "arn:t", "lastStatus": "RUNNING", "createdAt": datetime.fromtimestamp(5, timezone.utc),
                         "tags": [{"key": k, "value": v} for k, v in tags.items()]}, "mlbatch")
    assert (task.id, task.created, task.step) == ("arn:t", 5.0, "train")
    assert batch_resource({"jobId": "j2", "tags": {"team": "x"}}, "q") is None
    assert created_at("2026-12-02T13:45:01Z") == datetime(2026, 12, 2, 13, 45, 1, tzinfo=timezone.utc).timestamp()
