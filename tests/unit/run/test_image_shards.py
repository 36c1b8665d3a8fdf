"""The orchestrator's side of an image step: the request it sends and the commit of what each shard wrote."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

from mlbatch.backends.docker.config import HostFacts, container_kwargs
from mlbatch.backends.failures import FailureClass
from mlbatch.backends.jobs import JobResult, ShardOutcome
from mlbatch.backends.local import worker_argv, worker_env
from mlbatch.run import image_shards
from mlbatch.run.job_request import job_request
from mlbatch.run.step_try import StepTry
from mlbatch.spec.loader import load_spec
from workers.shard_metrics import mean_over_shards
from workers.step_output import StepOutput

SPEC = """
    steps:
      features: {run: features.synthetic}
      score:
        image: team/score:1
        backend: BACKEND
        command: [python3, /opt/score.py, --shard, "{shard.index}", --of, "{shard.count}", --scale, "{params.scale}"]
        params: {scale: 2, labels: [a, b]}
        needs: [features]
        shards: 3
"""


def _step(tmp_path: Path, backend: str = "docker"):
    path = tmp_path / "team.yaml"
    text = SPEC.replace("BACKEND", backend)
    if backend == "local":  # a command without an image is a local process
        text = text.replace("        image: team/score:1\n", "")
    path.write_text(textwrap.dedent(text))
    return load_spec(path).resolved_steps()["score"]


def _request(tmp_path: Path, backend: str = "docker"):
    output = str(tmp_path / "out" / "team" / "score" / "k1")
    step_try = StepTry(output=output, shard_count=3, key="k1", ingredients={}, todo=[0, 2], started=1.0,
                       memory_mib=512)
    return job_request(_step(tmp_path, backend), "team", step_try, upstream={"features": {"uri": "/a/features/k0"}},
                       artifacts=str(tmp_path / "out"), run_id="r", try_number=1, owner="me"), output


def test_a_container_runs_the_images_own_entrypoint_with_the_command_and_the_contract(tmp_path: Path) -> None:
    request, output = _request(tmp_path)
    assert request.entrypoint is None and request.step_output == output
    assert request.command == ["python3", "/opt/score.py", "--shard", "{shard.index}", "--of", "{shard.count}",
                               "--scale", "2"]
    kwargs = container_kwargs(request, 2, HostFacts(cpus=4))
    assert "entrypoint" not in kwargs  # the image's ENTRYPOINT, then this command as its CMD
    assert kwargs["command"][2:6] == ["--shard", "2", "--of", "3"]
    env = kwargs["environment"]
    assert (env["MLBATCH_SHARD_INDEX"], env["MLBATCH_SHARD_COUNT"]) == ("2", "3")
    assert env["MLBATCH_OUTPUT"] == f"{output}/shard-00002" and env["MLBATCH_STEP_OUTPUT"] == output
    assert json.loads(env["MLBATCH_PARAMS"]) == {"scale": 2, "labels": ["a", "b"]}
    assert json.loads(Path(env["MLBATCH_INPUTS"]).read_text()) == {"features": "/a/features/k0"}
    assert kwargs["volumes"][f"{output}/shard-00002"]["mode"] == "rw"  # its own folder alone is writable
    assert Path(f"{output}/shard-00002").is_dir() and not Path(f"{output}/shard-00001").exists()


def test_a_local_command_runs_as_written_without_the_worker_entrypoint(tmp_path: Path) -> None:
    request, output = _request(tmp_path, backend="local")
    assert request.entrypoint == [] and "PYTHONPATH" not in request.env
    assert worker_argv(request, 0)[:4] == ["python3", "/opt/score.py", "--shard", "0"]
    assert worker_env(request, 0)["MLBATCH_OUTPUT"] == f"{output}/shard-00000"


def _outcome(index: int, **fields) -> ShardOutcome:
    return ShardOutcome(index=index, exit_code=fields.pop("exit_code", 0), duration_s=1.5, **fields)


def test_shards_that_wrote_output_commit_even_when_a_sibling_failed(tmp_path: Path) -> None:
    output = str(tmp_path / "k1")
    step = StepOutput(output)
    for index, score in ((0, 0.5), (2, 0.7)):
        Path(step.shard_dir(index), "sub").mkdir(parents=True)
        Path(step.shard_dir(index), "sub", "part.csv").write_text("a\n1\n")
        Path(step.shard_dir(index), "metrics.json").write_text(json.dumps({"auc": score, "rows": 1}))
    Path(step.shard_dir(3)).mkdir()
    failed = _outcome(1, exit_code=1, failure=FailureClass.code_error, reason="exit code 1")
    result = JobResult(shard_count=4, outcomes=[_outcome(0), failed, _outcome(2), _outcome(3)])

    checked = image_shards.commit_written(output, result, params={"p": 1}, try_number=2)

    assert [o.index for o in checked.failures] == [1, 3]
    assert checked.failures[1].failure is FailureClass.code_error
    assert checked.failures[1].reason.startswith("shard 3 wrote no output to MLBATCH_OUTPUT")
    assert step.missing(4) == [1, 3]  # a retry runs these two alone
    manifest = json.loads(Path(step.shard_manifest_uri(2)).read_text())
    assert (manifest["worker"], manifest["try_number"], manifest["metrics"]) == ("image", 2, {"auc": 0.7, "rows": 1})
    assert manifest["outputs"] == {"metrics.json": f"{output}/shard-00002/metrics.json",
                                   "sub/part.csv": f"{output}/shard-00002/sub/part.csv"}
    assert manifest["counts"]["files"] == 2


def test_a_metrics_file_that_is_not_flat_numbers_fails_its_shard(tmp_path: Path) -> None:
    output = str(tmp_path / "k1")
    Path(StepOutput(output).shard_dir(0)).mkdir(parents=True)
    Path(StepOutput(output).shard_dir(0), "metrics.json").write_text('{"auc": "high"}')
    checked = image_shards.commit_written(output, JobResult(outcomes=[_outcome(0)]), params={}, try_number=1)
    assert "metrics.json must be a flat {name: number} object" in checked.failures[0].reason


def test_exit_127_is_a_command_not_found_that_no_retry_fixes(tmp_path: Path) -> None:
    step = _step(tmp_path)
    lost = _outcome(0, exit_code=127, failure=FailureClass.code_error, reason="exit code 127")
    explained = image_shards.explained(JobResult(outcomes=[lost, _outcome(1, exit_code=65,
                                                 failure=FailureClass.bad_input)]), step)
    missing, bad = explained.failures
    assert missing.reason.startswith("command not found in image team/score:1: 'python3' (step score, field command)")
    assert missing.final and not missing.retryable
    assert bad.failure is FailureClass.bad_input  # exit 65 keeps its class


def test_the_steps_metrics_are_the_mean_of_the_metrics_every_shard_reports() -> None:
    shards = [{"metrics": {"auc": 0.6, "rows": 10}}, {"metrics": {"auc": 0.8}}]
    assert mean_over_shards(shards) == {"auc": 0.7}
