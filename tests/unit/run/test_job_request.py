"""One try of a step as a JobRequest: the wire contract's argv and env, the try's shards, budget and tags."""
from __future__ import annotations

import json
from pathlib import Path

from mlbatch.project import PROJECT_ROOT
from mlbatch.run.job_request import job_request
from mlbatch.run.step_try import StepTry
from mlbatch.spec.loader import load_spec
from workers.request import StepRequest

SPEC = """
dag_id: churn
defaults: {resources: {vcpu: 2, memory: 2Gi}, timeout: 10m}
steps:
  features:
    run: features.synthetic
    params: {rows: 100}
  train:
    run: train.gbdt
    needs: [features]
    shards: 4
    backend: {backend}
    resources: {gpu: 1}
"""


def _train(tmp_path: Path, backend: str):
    path = tmp_path / "churn.yaml"
    path.write_text(SPEC.replace("{backend}", backend))
    return load_spec(path).resolved_steps()["train"]


def _try(**overrides) -> StepTry:
    fields = dict(output="/a/churn/train/k1", shard_count=4, key="k1", ingredients={"key": "k1"}, todo=[1, 3],
                  started=1.0, memory_mib=3072)
    return StepTry(**{**fields, **overrides})


def test_a_try_becomes_the_request_every_backend_takes(tmp_path):
    request = job_request(_train(tmp_path, "docker"), "churn", _try(),
                          upstream={"features": {"uri": "/a/f", "key": "kf"}},
                          artifacts="/a", run_id="manual__1", try_number=2, owner="ml")
    assert (request.name, request.shard_indices, request.shard_count) == ("churn.train", [1, 3], 4)
    assert (request.memory_mib, request.vcpu, request.gpu, request.timeout_s) == (3072, 2.0, 1, 600.0)
    assert request.env == {"MLBATCH_TRY_NUMBER": "2", "MLBATCH_ARTIFACTS": "/a", "MLBATCH_GPU": "1"}
    assert request.identity == "k1" and request.tags["run"] == "manual__1" and request.tags["try"] == "2"
    assert request.entrypoint is None and request.command[:2] == ["run", "--request"]
    sent = StepRequest.from_json(request.command[2])
    assert (sent.worker, sent.inputs, sent.output, sent.shard_count) == ("train.gbdt", {"features": "/a/f"},
                                                                         "/a/churn/train/k1", 4)
    assert json.loads(request.command[2])["shard_index"] == 0  # each shard learns its own from its environment


def test_a_local_worker_imports_this_checkouts_workers(tmp_path):
    request = job_request(_train(tmp_path, "local"), "churn", _try(), upstream={"features": {"uri": "/a/f"}},
                          artifacts="/a", run_id="r", try_number=1, owner="ml")
    assert request.env["PYTHONPATH"].split(":")[0] == str(PROJECT_ROOT)


def test_the_try_rides_in_a_deferral_as_plain_json():
    step_try = _try(handle={"job_id": "j1"})
    assert StepTry.model_validate(json.loads(json.dumps(step_try.model_dump(mode="json")))) == step_try
    assert step_try.done == 2


def test_the_steps_network_rides_in_the_request(tmp_path):
    path = tmp_path / "churn.yaml"
    path.write_text(SPEC.replace("{backend}", "docker").replace("    shards: 4\n", "    shards: 4\n    network: host\n"))
    steps = load_spec(path).resolved_steps()
    requests = {name: job_request(steps[name], "churn", _try(), upstream={"features": {"uri": "/a/f"}} if
                                  name == "train" else {}, artifacts="/a", run_id="r", try_number=1, owner="ml")
                for name in steps}
    assert (requests["train"].network, requests["features"].network) == ("host", None)
