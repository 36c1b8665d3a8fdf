"""python.call: a function imported by reference in the worker, JSON in and out, results read by the next step."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig

import pytest

from mlbatch.cache import keys
from workers import call_params
from workers.errors import BadInput
from workers.python_call import read_result
from workers.request import StepRequest
from workers.runner import run
from workers.step_output import StepOutput

TRAIN = "tests.unit.sdk.functions:train"


def _run(tmp_path, name: str, params: dict, shard_count: int = 1, inputs: dict | None = None) -> str:
    output = str(tmp_path / name)
    for index in range(shard_count):
        run(StepRequest("python.call", params, inputs or {}, output, index, shard_count))
    StepOutput(output).commit(shard_count)
    return output


def test_a_function_reads_its_upstreams_return_value_and_gets_its_shard(tmp_path):
    table = _run(tmp_path, "table", {"function": "tests.unit.sdk.functions:make_table", "args": [4]})
    assert read_result(table) == {"rows": [0, 1, 2, 3]}
    trained = _run(tmp_path, "train", {"function": TRAIN, "args": [{"$step": "table"}], "kwargs": {"lr": 0.2}},
                   shard_count=2, inputs={"table": table})
    assert read_result(trained) == [{"rows": 4, "lr": 0.2, "shard": [0, 2]}, {"rows": 4, "lr": 0.2, "shard": [1, 2]}]
    manifest = StepOutput(trained).manifest()
    assert manifest["shards"][1]["outputs"]["result"].endswith("shard-00001/result.json")


def test_shard_metric_reports_metrics_and_the_steps_are_the_mean_every_shard_reports(tmp_path):
    output = _run(tmp_path, "scored", {"function": "tests.unit.sdk.functions:scored", "args": [0.6]}, shard_count=2)
    manifest = StepOutput(output).manifest()
    assert [shard["metrics"] for shard in manifest["shards"]] == [{"auc": 0.6, "only_shard_0": 1.0},
                                                                 {"auc": 0.7, "only_shard_1": 1.0}]
    assert manifest["metrics"] == {"auc": pytest.approx(0.65)}
    one = _run(tmp_path, "one", {"function": "tests.unit.sdk.functions:scored", "args": [0.6]})
    assert StepOutput(one).manifest()["metrics"] == {"auc": 0.6, "only_shard_0": 1.0}


def test_a_metric_that_is_not_a_finite_number_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match=r"shard.metric\('auc', nan\): a metric is a finite number"):
        _run(tmp_path, "x", {"function": "tests.unit.sdk.functions:bad_metric"})


def test_a_function_that_cannot_be_imported_is_bad_input_naming_it_where_and_the_fix(tmp_path):
    with pytest.raises(BadInput) as caught:
        _run(tmp_path, "x", {"function": "team_missing.steps:train", "image": "team-image:1"})
    message = str(caught.value)
    assert message.startswith("cannot import function team_missing.steps:train in image team-image:1: "
                              "ModuleNotFoundError: No module named 'team_missing'")
    assert "Fix: install the function's package in the image (build it FROM the worker image" in message


def test_a_return_value_that_is_not_json_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match=r"functions:not_json returned a value that is not JSON .*return its URI"):
        _run(tmp_path, "x", {"function": "tests.unit.sdk.functions:not_json"})


def test_an_argument_naming_a_step_that_is_no_input_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="refers to step 'nope', which is not an input of this step"):
        _run(tmp_path, "x", {"function": TRAIN, "args": [{"$step": "nope"}]})


def test_in_an_image_without_mlbatch_a_step_module_imports_through_the_stand_in(tmp_path):
    """The worker image holds workers/ only: `from mlbatch.sdk import step` must still import there."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "image_steps.py").write_text(
        "import sys\nfrom mlbatch.sdk import step\n\n@step(shards=2)\ndef double(x, shard=None):\n"
        "    return [x * 2, shard.index, hasattr(sys.modules['mlbatch.sdk'], 'StepFunction')]\n")
    request = json.dumps({"worker": "python.call", "output": str(tmp_path / "out"), "shard_count": 2,
                          "params": {"function": "image_steps:double", "args": [21], "code": str(code)}})
    site = sysconfig.get_paths()["purelib"]  # its packages, without the .pth files that make mlbatch importable
    script = (f"import sys; sys.path.append({site!r}); from workers.__main__ import main;"
              f"sys.exit(main(['run', '--request', sys.argv[1]]))")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(keys.PROJECT_ROOT), "MLBATCH_SHARD_INDEX": "1"}
    out = subprocess.run([sys.executable, "-S", "-c", script, request], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "out" / "shard-00001" / "result.json").read_text()) == [42, 1, False]


def test_the_cache_keys_code_part_covers_the_called_functions_module(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "keyed_steps.py").write_text("def f():\n    return 1\n")
    params = {"function": "keyed_steps:f", "code": str(code)}
    [before] = keys.called_code_versions("python.call", params)
    assert before.startswith("keyed_steps:") and keys.called_code_versions("python.call", params) == [before]
    (code / "keyed_steps.py").write_text("def f():\n    return 2\n")
    assert keys.called_code_versions("python.call", params) != [before]
    assert keys.called_code_versions("check.noop", {}) == []  # other workers: their own package alone
    assert keys.CODE_MARK == call_params.CODE_MARK  # the cache and the params model spell the mark alike


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a process of another uid")
def test_a_code_folder_the_workers_uid_cannot_list_is_named_as_such(tmp_path):
    code = tmp_path / "code"
    code.mkdir(mode=0o700)
    (code / "hidden_steps.py").write_text("def f():\n    return 1\n")
    tmp_path.chmod(0o711)
    probe = ("from workers.python_call import load_function\n"
             f"load_function('hidden_steps:f', {str(code)!r}, None)\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, user=10001, group=10001,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode != 0
    assert "a folder this worker (uid 10001) cannot list" in proc.stderr, proc.stderr[-2000:]
