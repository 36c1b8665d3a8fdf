"""JobRequest -> SubmitJob arguments, exactly; and the retry rules under Batch's matching semantics."""
from __future__ import annotations

import fnmatch
import json

import pytest

from mlbatch.backends.aws_batch.submission import (
    MAX_ARRAY_SIZE, job_name, retry_strategy, shard_map, submit_job_args,
)
from mlbatch.backends.jobs import JobRequest
from workers.request import StepRequest

COMMAND = ["python", "-m", "workers", "run", "--request", "{}"]


def _request(**overrides) -> JobRequest:
    fields = dict(name="churn.train", image="mlbatch-worker:cpu", command=COMMAND, env={"MLBATCH_TRY_NUMBER": "2"},
                  vcpu=2, memory_mib=3072, shard_count=5, timeout_s=1800, identity="abcdef0123456789ffff",
                  tags={"dag": "churn", "step": "train", "key": "abcdef0123456789ffff"})
    fields.update(overrides)
    return JobRequest(**fields)


def test_a_full_fan_out_is_one_array_job_with_every_setting_mapped():
    args = submit_job_args(_request(), queue="q-cpu", job_definition="mlbatch-cpu", spot_retries=3)
    env = {item["name"]: item["value"] for item in args["containerOverrides"]["environment"]}
    assert args == {
        "jobName": "churn__train__abcdef0123456789",
        "jobQueue": "q-cpu",
        "jobDefinition": "mlbatch-cpu",
        "arrayProperties": {"size": 5},
        "containerOverrides": {
            "command": COMMAND,
            "environment": args["containerOverrides"]["environment"],
            "resourceRequirements": [{"type": "VCPU", "value": "2"}, {"type": "MEMORY", "value": "3072"}],
        },
        "retryStrategy": {"attempts": 4, "evaluateOnExit": [
            {"onStatusReason": "Host EC2*", "action": "RETRY"}, {"onReason": "*", "action": "EXIT"}]},
        "timeout": {"attemptDurationSeconds": 1800},
        "tags": {"mlbatch:dag": "churn", "mlbatch:key": "abcdef0123456789ffff", "mlbatch:step": "train"},
        "propagateTags": True,
    }
    assert env["MLBATCH_SHARD_COUNT"] == "5" and "MLBATCH_SHARD_MAP" not in env and "MLBATCH_SHARD_INDEX" not in env
    assert env["OMP_NUM_THREADS"] == "2" and env["MLBATCH_TRY_NUMBER"] == "2"


def test_one_shard_is_a_plain_job_told_its_index():
    args = submit_job_args(_request(shard_indices=[3]), queue="q", job_definition="d", spot_retries=0)
    env = {item["name"]: item["value"] for item in args["containerOverrides"]["environment"]}
    assert "arrayProperties" not in args
    assert env["MLBATCH_SHARD_INDEX"] == "3" and env["MLBATCH_SHARD_COUNT"] == "5"
    assert args["retryStrategy"]["attempts"] == 1


def test_a_retry_of_missing_shards_maps_array_children_to_them():
    request = _request(shard_count=12, shard_indices=[1, 3, 4, 5, 9])
    args = submit_job_args(request, queue="q", job_definition="d", spot_retries=3)
    env = {item["name"]: item["value"] for item in args["containerOverrides"]["environment"]}
    assert args["arrayProperties"] == {"size": 5}
    assert env["MLBATCH_SHARD_MAP"] == "1,3-5,9"
    step = StepRequest(worker="check.noop", output="/tmp/x", shard_count=12)
    seen = [step.with_env({**env, "AWS_BATCH_JOB_ARRAY_INDEX": str(i)}).shard_index for i in range(5)]
    assert seen == [1, 3, 4, 5, 9]


def test_gpu_fractional_vcpu_and_short_timeouts_are_made_valid_for_batch():
    args = submit_job_args(_request(vcpu=0.5, gpu=1, timeout_s=20), queue="q", job_definition="d", spot_retries=1)
    assert args["containerOverrides"]["resourceRequirements"] == [
        {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "3072"}, {"type": "GPU", "value": "1"}]
    assert args["timeout"] == {"attemptDurationSeconds": 60}
    assert "timeout" not in submit_job_args(_request(timeout_s=None), queue="q", job_definition="d", spot_retries=1)


def test_more_shards_than_one_array_holds_is_refused():
    with pytest.raises(ValueError, match="at most 10000"):
        submit_job_args(_request(shard_count=MAX_ARRAY_SIZE + 1), queue="q", job_definition="d", spot_retries=0)


def test_ten_thousand_shards_are_one_call_within_the_payload_quota(tmp_path):
    args = submit_job_args(_request(shard_count=MAX_ARRAY_SIZE), queue="q", job_definition="d", spot_retries=0)
    assert args["arrayProperties"] == {"size": MAX_ARRAY_SIZE}
    assert len(json.dumps(args)) < 30 * 1024
    # a scattered retry (2 of every 3 shards): ranges alone would exceed SubmitJob's 30 KiB quota
    scattered = _request(shard_count=MAX_ARRAY_SIZE, shard_indices=[i for i in range(MAX_ARRAY_SIZE) if i % 3])
    with pytest.raises(ValueError, match="too long for SubmitJob"):
        submit_job_args(scattered, queue="q", job_definition="d", spot_retries=0)
    map_file = tmp_path / "map.txt"
    map_file.write_text(shard_map(scattered))
    args = submit_job_args(scattered, queue="q", job_definition="d", spot_retries=0, map_uri=str(map_file))
    env = {item["name"]: item["value"] for item in args["containerOverrides"]["environment"]}
    assert len(json.dumps(args)) < 30 * 1024 and "MLBATCH_SHARD_MAP" not in env
    step = StepRequest(worker="check.noop", output="/tmp/x", shard_count=MAX_ARRAY_SIZE)
    children = [0, 1, 2, 6665]
    assert [step.with_env({**env, "AWS_BATCH_JOB_ARRAY_INDEX": str(i)}).shard_index for i in children] == [1, 2, 4, 9998]


def test_job_names_are_deterministic_and_valid():
    assert job_name(_request()) == job_name(_request(env={"OTHER": "1"}))
    assert job_name(_request(identity="x" * 20)) != job_name(_request())
    odd = job_name(_request(name="a b.ç" * 40))
    assert len(odd) <= 128 and all(c.isalnum() or c in "-_" for c in odd)


def _batch_decision(rules: list[dict], status_reason: str, reason: str, exit_code: str) -> str:
    """AWS Batch's documented evaluateOnExit: the first rule whose every given pattern matches wins."""
    for rule in rules:
        checks = [(rule.get("onStatusReason"), status_reason), (rule.get("onReason"), reason),
                  (rule.get("onExitCode"), exit_code)]
        if all(pattern is None or fnmatch.fnmatchcase(value, pattern) for pattern, value in checks):
            return rule["action"]
    return "RETRY"  # no rule matched: Batch retries while attempts remain


@pytest.mark.parametrize("status_reason, reason, exit_code, decision", [
    ("Host EC2 (instance i-0abc) terminated.", "", "", "RETRY"),
    ("Essential container in task exited", "OutOfMemoryError: Container killed due to memory usage", "137", "EXIT"),
    ("Essential container in task exited", "", "65", "EXIT"),
    ("Essential container in task exited", "", "1", "EXIT"),
    ("Job attempt duration exceeded timeout", "", "", "EXIT"),
])
def test_only_host_loss_is_retried_inside_batch(status_reason, reason, exit_code, decision):
    rules = retry_strategy(3)["evaluateOnExit"]
    assert len(rules) <= 5
    assert _batch_decision(rules, status_reason, reason, exit_code) == decision
