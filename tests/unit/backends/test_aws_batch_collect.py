"""Collecting a finished array job: per-child summary, every failed child's log tail, classes per shard."""
from __future__ import annotations

from mlbatch.backends.aws_batch.backend import AwsBatchBackend, BatchHandle
from mlbatch.backends.aws_batch.trigger import BatchStepTrigger
from mlbatch.backends.traits import backend_info, unseen_disk_problem
from mlbatch.backends.failures import FailureClass
from mlbatch.settings import Settings


class _Jobs:
    """Finished children of a 40-child array: children 3 and 17 failed (17 with bad input)."""

    def finished_children(self, job_id):
        children = []
        for i in range(40):
            failed = i in (3, 17)
            children.append({"jobId": f"{job_id}:{i}", "status": "FAILED" if failed else "SUCCEEDED",
                             "statusReason": "Essential container in task exited" if failed else None,
                             "container": {"exitCode": (65 if i == 17 else 1) if failed else 0},
                             "startedAt": 1_000, "stoppedAt": 3_500})
        return children

    def log_lines(self, job_id):
        index = int(job_id.rsplit(":", 1)[1])
        tail = ["mlbatch-bad-input: column 'x' is missing"] if index == 17 else [f"ValueError: child {index}"]
        return [f"line {n}" for n in range(30)] + tail


def test_every_failed_child_is_named_with_its_own_log_tail_and_class():
    lines: list[str] = []
    backend = AwsBatchBackend(log=lines.append, settings=Settings(), jobs=_Jobs())
    # a retry of 40 missing shards out of 100: array child i ran shard 2*i+1
    handle = BatchHandle(job_id="j", job_name="n", queue="q", name="d.s", indices=[2 * i + 1 for i in range(40)],
                         shard_count=100, memory_mib=2048, vcpu=1, gpu=0, spot=True, submitted_at=0.0)
    result = backend.collect(handle)
    assert "d.s: 40 children: 2 failed, 38 succeeded (shards 7,35)" in lines
    failures = {o.index: o for o in result.failures}
    assert failures[7].failure is FailureClass.code_error and "ValueError: child 3" in failures[7].reason
    assert failures[35].failure is FailureClass.bad_input and "column 'x' is missing" in failures[35].reason
    assert "[shard 35/100] mlbatch-bad-input: column 'x' is missing" in lines
    assert not any(line.startswith("[shard 1/100]") for line in lines)  # > 10 children: only failed ones' logs
    assert sum(o.duration_s for o in result.outcomes) == 40 * 2.5


def test_the_trigger_serializes_to_plain_values_and_back():
    trigger = BatchStepTrigger(job_id="j1", aws_conn_id="aws_default", region_name="eu-west-1", poll_interval_s=5,
                               start_deadline=123.5, resume={"output": "s3://b/o", "todo": [1, 2]})
    path, kwargs = trigger.serialize()
    assert path == "mlbatch.backends.aws_batch.trigger.BatchStepTrigger"
    assert BatchStepTrigger(**kwargs).serialize() == (path, kwargs)
    import json

    assert json.loads(json.dumps(kwargs)) == kwargs


def test_remote_steps_need_an_object_store_artifact_root():
    assert unseen_disk_problem(backend_info("batch"), "s3://bucket/ml") is None
    problem = unseen_disk_problem(backend_info("batch"), "/home/me/artifacts")
    assert "cannot see this machine's disk" in problem and "s3://" in problem


class _AllFailed(_Jobs):
    def finished_children(self, job_id):
        return [{**child, "status": "FAILED", "statusReason": "Essential container in task exited",
                 "container": {"exitCode": 1}} for child in super().finished_children(job_id)]


def test_a_wholly_failed_array_logs_a_bounded_number_of_failure_blocks():
    lines: list[str] = []
    backend = AwsBatchBackend(log=lines.append, settings=Settings(), jobs=_AllFailed())
    handle = BatchHandle(job_id="j", job_name="n", queue="q", name="d.s", indices=list(range(40)), shard_count=40,
                         memory_mib=2048, vcpu=1, gpu=0, spot=False, submitted_at=0.0)
    result = backend.collect(handle)
    assert len(result.failures) == 40
    assert sum(line.startswith("=== mlbatch step failed ===") for line in lines) == 20
    assert "d.s: 20 more failed children not shown in full (shards 20,21," in "\n".join(lines)
