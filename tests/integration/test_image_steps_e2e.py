"""Image steps end to end through real Airflow: a team's image with nothing of mlbatch inside (python3 and a
short script, tests/containers/team_image) runs as a 3-shard step on the docker backend between catalogue
steps; a command step runs as a local process; a gate reads the image step's metric; the cache keys on the
image's digest; the wrong commands fail with what to do about them."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from mlbatch.cli.report import collect
from tests.containers.team_images import ensure_team_image
from tests.integration.airflow_run import dags_test, migrate_db, write_batch
from workers import artifacts

pytestmark = [pytest.mark.slow, pytest.mark.containers]

BATCH = """
    steps:
      features: {run: features.synthetic, params: {rows: 300}}
      score:
        image: IMAGE
        backend: docker
        command: [python3, /opt/team/score.py, score, --shard, "{shard.index}", --scale, "{params.scale}"]
        params: {scale: 2}
        needs: [features]
        shards: 3
        retries: 0
        gate: {metric: score, min: MIN}
      after:
        run: check.noop
        needs: [score]
        shards: {per: 2, of: score.files}
      hello:
        command: [sh, -c, 'echo "{params.word} $MLBATCH_SHARD_INDEX/$MLBATCH_SHARD_COUNT" > "$MLBATCH_OUTPUT/hello.txt"']
        params: {word: hi}
"""

BROKEN = """
    defaults: {retries: 0, backend: docker, image: IMAGE}
    steps:
      missing:
        command: [no-such-program, --help]
      silent:
        command: [python3, /opt/team/score.py, nothing]
        shards: 2
"""


@pytest.fixture(scope="module", autouse=True)
def _db() -> None:
    migrate_db()


@pytest.fixture(scope="module")
def team_image(docker_client: Any, base_image: str) -> str:
    return ensure_team_image(docker_client, base_image)


def _hits(output: str) -> int:
    return len(re.findall(r"cache hit [0-9a-f]{20} \(computed by", output))


def _latest(dag_id: str, step: str) -> dict[str, Any]:
    root = os.environ["MLBATCH_ARTIFACTS"]
    return artifacts.read_step_manifest(artifacts.read_json(artifacts.latest_pointer_uri(root, dag_id, step))["uri"])


def test_a_team_image_runs_three_shards_between_catalogue_steps_gated_and_cached_on_its_digest(
        tmp_path: Path, team_image: str, base_image: str, docker_client: Any) -> None:
    moving = f"{team_image.split(':')[0]}:e2e-{os.getpid()}"  # one name a rebuilt image moves onto
    docker_client.images.get(team_image).tag(moving)
    write_batch(tmp_path, "team_scores", BATCH.replace("IMAGE", moving).replace("MIN", "1.5"))
    first = dags_test(tmp_path, "team_scores")
    assert first.returncode == 0, first.output[-5000:]
    assert {row.step: row.state for row in collect("team_scores").steps} == dict.fromkeys(
        ["features", "score", "after", "hello"], "success")
    score = _latest("team_scores", "score")
    assert score["shard_count"] == 3 and score["metrics"] == {"rows": 100, "score": 4.0, "version": 1}
    assert score["counts"] == {"files": 6, "bytes": score["counts"]["bytes"]}  # part.csv + metrics.json each
    shards = score["shards"]
    assert [sorted(shard["outputs"]) for shard in shards] == [["metrics.json", "part.csv"]] * 3
    lines = Path(shards[1]["outputs"]["part.csv"]).read_text().splitlines()
    assert lines[:2] == ["row_id,score", "1,0.006667"] and len(lines) == 101  # rows 1, 4, 7... of 300
    assert score["cache"]["code_version"].startswith("image:sha256:")
    assert _latest("team_scores", "after")["shard_count"] == 3  # sized from the image step's 6 files
    hello = _latest("team_scores", "hello")["shards"][0]["outputs"]["hello.txt"]
    assert Path(hello).read_text() == "hi 0/1\n"
    assert "started container" in first.output and "[shard 2/3]" in first.output

    again = dags_test(tmp_path, "team_scores")
    assert again.returncode == 0, again.output[-5000:]
    assert _hits(again.output) == 4, again.output[-5000:]

    rebuilt = ensure_team_image(docker_client, base_image, version=2)  # the same name on a changed image
    docker_client.images.get(rebuilt).tag(moving)
    third = dags_test(tmp_path, "team_scores")
    assert third.returncode == 0, third.output[-5000:]
    assert _hits(third.output) == 2, third.output[-5000:]  # features and hello: score and after rerun
    assert _latest("team_scores", "score")["metrics"]["version"] == 2
    docker_client.images.remove(moving)


def test_a_gate_fails_on_the_image_steps_metric(tmp_path: Path, team_image: str) -> None:
    write_batch(tmp_path, "team_gate", BATCH.replace("IMAGE", team_image).replace("MIN", "5"))
    result = dags_test(tmp_path, "team_gate")
    assert result.returncode != 0
    states = {row.step: row.state for row in collect("team_gate").steps}
    assert states["score"] == "failed" and states["after"] == "upstream_failed"
    assert "gate failed: score 4 is below the minimum 5" in result.output  # the mean of the shards' 2, 4 and 6


def test_a_missing_program_and_a_silent_success_fail_with_what_to_do(tmp_path: Path, team_image: str) -> None:
    write_batch(tmp_path, "team_broken", BROKEN.replace("IMAGE", team_image))
    result = dags_test(tmp_path, "team_broken")
    assert result.returncode != 0
    assert {row.step: row.state for row in collect("team_broken").steps} == {"missing": "failed",
                                                                             "silent": "failed"}
    assert (f"command not found in image {team_image}: 'no-such-program' (step missing, field command): "
            "install it in the image or fix command:") in result.output
    assert "shard 0 wrote no output to MLBATCH_OUTPUT" in result.output
