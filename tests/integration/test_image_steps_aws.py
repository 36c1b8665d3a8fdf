"""An image step on the ECS and AWS Batch stand-ins (moto on 127.0.0.1, every task and array child a real
container): the team image with nothing of mlbatch inside reads its input from S3 and writes its shard's
output there (the stdlib's HTTP, signed with the task role's credentials), keyed in the cache by the digest
ECR's DescribeImages gives. A Batch array child learns its shard as docs/image-steps.md says."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlbatch.cli.report import collect
from tests.containers.team_images import ensure_team_image
from tests.integration.airflow_run import dags_test, write_batch
from tests.integration.aws_stand_in import REGION
from tests.integration.conftest import aws_env

pytestmark = [pytest.mark.slow, pytest.mark.containers]

REPOSITORY = "team-score"
IMAGE = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}:1"
ARGS = {"ecs": '[python3, /opt/team/score.py, score, --shard, "{shard.index}", --scale, "{params.scale}"]',
        "batch": "[python3, /opt/team/score.py, score]"}  # array children share one command
BATCH = f"""
    defaults: {{retries: 0, backend: BACKEND, timeout: 5m}}
    steps:
      features: {{run: features.synthetic, params: {{rows: 300}}}}
      score:
        image: {IMAGE}
        command: COMMAND
        params: {{scale: 2}}
        needs: [features]
        shards: 3
        gate: {{metric: score, min: 1.5}}
      after:
        run: check.noop
        needs: [score]
        shards: {{per: 2, of: score.files}}
"""


@pytest.fixture(scope="module")
def on_aws(aws: Any, docker_client: Any, base_image: str, tmp_path_factory: Any) -> Path:
    """The team image pushed to the stand-in's ECR, its tasks run as the image built here, its definition deployed."""
    team = ensure_team_image(docker_client, base_image)
    ecr = aws.client("ecr")
    ecr.create_repository(repositoryName=REPOSITORY)
    ecr.put_image(repositoryName=REPOSITORY, imageTag="1", imageManifest=json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "config": {"digest": docker_client.images.get(team).id}}))
    known = aws.runner.image_for
    aws.runner.image_for = lambda image: team if image == IMAGE else known(image)
    dags = tmp_path_factory.mktemp("dags")
    for backend, command in ARGS.items():
        write_batch(dags, f"team_{backend}", BATCH.replace("BACKEND", backend).replace("COMMAND", command))
    from mlbatch.cli.deploy import deploy

    assert deploy(dags / "specs", None, dry_run=False, out=lambda line: None) == 0
    return dags


@pytest.mark.parametrize("backend", list(ARGS))
def test_a_team_image_runs_three_shards_reading_and_writing_s3(aws: Any, on_aws: Path, backend: str) -> None:
    dag_id = f"team_{backend}"
    first = dags_test(on_aws, dag_id, env=aws_env(aws))
    assert first.returncode == 0, first.output[-5000:]
    steps = {row.step: row.summary for row in collect(dag_id).steps}
    assert steps["score"]["metrics"] == {"rows": 100, "score": 4.0, "version": 1}
    assert steps["score"]["counts"]["files"] == 6 and steps["after"]["shard_count"] == 3
    digest = aws.client("ecr").describe_images(repositoryName=REPOSITORY)["imageDetails"][0]["imageDigest"]
    manifest = json.loads(aws.client("s3").get_object(
        Bucket="mlbatch-artifacts", Key=steps["score"]["uri"].split("/", 3)[3] + "/manifest.json")["Body"].read())
    assert manifest["cache"]["code_version"] == f"image:{digest}"
    assert manifest["shards"][2]["outputs"]["part.csv"].startswith("s3://mlbatch-artifacts/")

    if backend == "batch":  # one array job whose children found their shards themselves
        from moto.batch.models import batch_backends

        jobs = [job for job in batch_backends["123456789012"][REGION]._jobs.values()
                if job.job_name.startswith("team_batch__score__")]
        assert [job.array_properties["size"] for job in jobs if "size" in job.array_properties] == [3]
        assert sorted(job.array_properties["index"] for job in jobs if "index" in job.array_properties) == [0, 1, 2]

    again = dags_test(on_aws, dag_id, env=aws_env(aws))
    assert again.returncode == 0, again.output[-5000:]
    assert again.output.count("(computed by run") == 3, again.output[-5000:]
