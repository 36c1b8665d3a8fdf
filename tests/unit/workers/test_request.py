"""StepRequest: what a worker is asked to do, from JSON and the environment."""
from __future__ import annotations

import pytest

from workers.errors import BadInput
from workers.request import StepRequest




# --- StepRequest ---------------------------------------------------------------

def test_request_fills_defaults_and_round_trips():
    req = StepRequest("train.gbdt", {"max_iter": 20}, {"features": "/a"}, "/out", 1, 3, 2)
    assert req.params["max_iter"] == 20 and req.params["learning_rate"] == 0.1
    assert req.settings.max_iter == 20
    again = StepRequest.from_json(req.to_json())
    assert again == req and again.params == req.params


@pytest.mark.parametrize("params, field", [({"rows": 0}, "rows"), ({"rowz": 5}, "rowz"),
                                           ({"seed": "abc"}, "seed")])
def test_invalid_params_name_the_field(params, field):
    with pytest.raises(BadInput, match=f"'{field}'"):
        StepRequest("features.synthetic", params, output="/out")


@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"),
    ('{"worker": "nope", "output": "/o"}', "unknown worker 'nope'"),
    ('{"worker": "check.noop", "output": "/o", "shard_index": 3, "shard_count": 3}', "outside 0..2"),
    ('{"worker": "check.noop", "output": "/o", "colour": 1}', "unknown field"),
])
def test_invalid_requests(text, match):
    with pytest.raises(BadInput, match=match):
        StepRequest.from_json(text)


def test_env_overrides_shard_and_try():
    req = StepRequest("check.noop", output="/o", shard_index=0, shard_count=10)
    assert req.with_env({"MLBATCH_SHARD_INDEX": "4", "AWS_BATCH_JOB_ARRAY_INDEX": "2"}).shard_index == 4
    assert req.with_env({"AWS_BATCH_JOB_ARRAY_INDEX": "2"}).shard_index == 2
    mapped = req.with_env({"AWS_BATCH_JOB_ARRAY_INDEX": "1", "MLBATCH_SHARD_MAP": "3,7,9",
                           "MLBATCH_TRY_NUMBER": "3"})
    assert (mapped.shard_index, mapped.try_number) == (7, 3)
    assert req.with_env({"MLBATCH_SHARD_COUNT": "20", "MLBATCH_SHARD_INDEX": "15"}).shard_count == 20
    assert req.with_env({}) == req
    with pytest.raises(BadInput, match="outside MLBATCH_SHARD_MAP"):
        req.with_env({"AWS_BATCH_JOB_ARRAY_INDEX": "3", "MLBATCH_SHARD_MAP": "3,7,9"})
    with pytest.raises(BadInput, match="MLBATCH_SHARD_INDEX"):
        req.with_env({"MLBATCH_SHARD_INDEX": "two"})
