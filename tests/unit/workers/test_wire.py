"""The wire contract: what the orchestrator writes is what a worker reads back."""
from __future__ import annotations

import dataclasses
import json

import pytest

from workers import wire
from workers.errors import BadInput
from workers.request import StepRequest, shard_map_of


def test_ranges_are_short_and_read_back_exactly():
    assert wire.encode_ranges([0, 1, 2, 3, 7]) == "0-3,7"
    assert wire.encode_ranges([9, 5, 4]) == "4-5,9"
    assert wire.encode_ranges([5]) == "5"
    assert wire.encode_ranges([]) == ""
    for shards in ([0, 1, 2, 3, 7], [1, 3, 4, 5, 9], [42], list(range(0, 10_000, 3))):
        assert wire.decode_ranges(wire.encode_ranges(shards)) == shards
    with pytest.raises(ValueError, match="ranges like"):
        wire.decode_ranges("1,x")
    with pytest.raises(BadInput, match="MLBATCH_SHARD_MAP='1,x' is not a list"):
        shard_map_of({"MLBATCH_SHARD_MAP": "1,x"})


def test_shard_env_names_what_the_worker_reads():
    assert wire.shard_env(5, 3) == {"MLBATCH_SHARD_COUNT": "5", "MLBATCH_SHARD_INDEX": "3"}
    assert wire.shard_env(10, shard_map=[2, 3, 4, 8]) == {"MLBATCH_SHARD_COUNT": "10", "MLBATCH_SHARD_MAP": "2-4,8"}
    assert wire.shard_env(10, shard_map_uri="s3://b/m.txt") == {"MLBATCH_SHARD_COUNT": "10",
                                                              "MLBATCH_SHARD_MAP_URI": "s3://b/m.txt"}
    request = StepRequest(worker="features.synthetic", output="/tmp/out")
    child = {**wire.shard_env(10, shard_map=[2, 3, 4, 8]), "AWS_BATCH_JOB_ARRAY_INDEX": "3"}
    assert request.with_env(child).shard_index == 8
    assert request.with_env({**wire.shard_env(10, 7), **wire.try_env(try_number=3, artifacts="/a")}) == \
        dataclasses.replace(request, shard_index=7, shard_count=10, try_number=3)


def test_a_shard_map_in_a_file_is_read_through_the_artifact_store(tmp_path):
    path = tmp_path / "map.txt"
    path.write_text("3,7-9")
    assert shard_map_of(wire.shard_env(10, shard_map_uri=str(path))) == [3, 7, 8, 9]
    assert shard_map_of(wire.shard_env(10)) is None
    with pytest.raises(BadInput, match="does not exist"):
        shard_map_of(wire.shard_env(10, shard_map_uri=str(tmp_path / "gone.txt")))


def test_the_step_request_on_the_wire_is_a_step_request():
    assert set(wire.REQUEST_FIELDS) == {f.name for f in dataclasses.fields(StepRequest) if f.init}
    sent = wire.step_request(worker="features.synthetic", params={"rows": 10}, inputs={"a": "/x"},
                             output="/tmp/out", shard_count=4)
    command = wire.run_command(sent)
    assert command[:2] == ["run", "--request"]
    parsed = StepRequest.from_json(command[2])
    assert (parsed.worker, parsed.inputs, parsed.output, parsed.shard_count) == ("features.synthetic", {"a": "/x"},
                                                                                 "/tmp/out", 4)
    assert json.loads(command[2])["params"] == {"rows": 10}
    assert wire.try_env(try_number=2, artifacts="s3://b", gpu=1) == {
        "MLBATCH_TRY_NUMBER": "2", "MLBATCH_ARTIFACTS": "s3://b", "MLBATCH_GPU": "1"}
    assert "MLBATCH_GPU" not in wire.try_env(try_number=1, artifacts="/a")
