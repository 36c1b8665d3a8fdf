"""Image steps on AWS Batch and ECS: the command each container gets, its contract env, and the image digest
that keys the cache (ECR's DescribeImages is the one call a local stand-in does not serve: its exact call)."""
from __future__ import annotations

import pytest

from mlbatch.backends.aws.images import image_digest
from mlbatch.backends.aws_batch.submission import submit_job_args
from mlbatch.backends.ecs.submission import run_task_args
from mlbatch.backends.jobs import JobRequest

OUTPUT = "s3://team-bucket/artifacts/team/score/k1"
DIGEST = "sha256:" + "ab" * 32


def _request(**overrides) -> JobRequest:
    fields = dict(name="team.score", image="team/score:1", command=["score", "--shard", "{shard.index}"],
                  step_output=OUTPUT, shard_count=3, identity="k1" * 10,
                  env={"MLBATCH_PARAMS": "{}", "MLBATCH_INPUTS": f"{OUTPUT}/inputs.json"})
    return JobRequest(**{**fields, **overrides})


def _env(pairs: list[dict[str, str]]) -> dict[str, str]:
    return {pair["name"]: pair["value"] for pair in pairs}


def test_an_ecs_task_gets_its_shards_command_output_and_contract() -> None:
    args = run_task_args(_request(), 2, cluster="c", task_definition="t", capacity_provider="FARGATE",
                         subnets=["s"], security_groups=["g"], assign_public_ip=False)
    (container,) = args["overrides"]["containerOverrides"]
    assert container["command"] == ["score", "--shard", "2"] and "entryPoint" not in container
    env = _env(container["environment"])
    assert env["MLBATCH_OUTPUT"] == f"{OUTPUT}/shard-00002" and env["MLBATCH_SHARD_INDEX"] == "2"
    assert env["MLBATCH_INPUTS"] == f"{OUTPUT}/inputs.json"


def test_one_batch_job_per_shard_is_filled_in_and_an_array_cannot_name_each_childs_shard() -> None:
    args = submit_job_args(_request(shard_indices=[1]), queue="q", job_definition="d", spot_retries=0)
    assert args["containerOverrides"]["command"] == ["score", "--shard", "1"]
    assert _env(args["containerOverrides"]["environment"])["MLBATCH_OUTPUT"] == f"{OUTPUT}/shard-00001"
    with pytest.raises(ValueError, match=r"cannot hold \{shard.index\}"):
        submit_job_args(_request(), queue="q", job_definition="d", spot_retries=0)
    array = submit_job_args(_request(command=["score"]), queue="q", job_definition="d", spot_retries=0)
    env = _env(array["containerOverrides"]["environment"])
    assert "MLBATCH_OUTPUT" not in env and env["MLBATCH_STEP_OUTPUT"] == OUTPUT  # the child adds shard-%05d


class _Ecr:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def describe_images(self, **kwargs):
        self.calls.append(kwargs)
        return {"imageDetails": [{"imageDigest": DIGEST}]}


def test_the_digest_is_the_pin_or_ecrs_and_a_bare_tag_warns() -> None:
    warnings: list[str] = []
    warn = lambda text, *args: warnings.append(text % args)  # noqa: E731
    assert image_digest(f"team/score@{DIGEST}", warn) == f"image:{DIGEST}"
    ecr = _Ecr()
    ref = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/score:7"
    assert image_digest(ref, warn, ecr=ecr) == f"image:{DIGEST}"
    assert ecr.calls == [{"registryId": "123456789012", "repositoryName": "team/score",
                          "imageIds": [{"imageTag": "7"}]}]
    assert warnings == []
    assert image_digest("team/score:1", warn) == "image-tag:team/score:1"
    assert "pin image@sha256:... for exact caching" in warnings[0]


def test_on_aws_a_command_steps_image_names_its_registry(tmp_path) -> None:
    from mlbatch.spec.loader import load_spec
    from mlbatch.spec.problems import SpecError

    path = tmp_path / "team.yaml"
    path.write_text("steps:\n  score: {image: 'score:1', backend: ecs, command: [score]}\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    (problem,) = info.value.problems
    assert (problem.step, problem.field) == ("score", "steps.score.image")
    assert "a short name that means a variant of the deployment's worker image" in problem.message
    path.write_text("steps:\n  score: {image: 'team/score:1', backend: batch, command: [score], timeout: 5m}\n")
    assert load_spec(path).resolved_steps()["score"].image == "team/score:1"
