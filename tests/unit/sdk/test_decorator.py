"""@step without Airflow: what a worker can import, and how a function that cannot travel is refused."""
from __future__ import annotations

import subprocess
import sys

import pytest

from mlbatch.sdk import StepDefinitionError, StepFunction, step
from tests.unit.sdk import functions


def test_a_decorated_function_travels_by_module_and_qualname_and_still_calls_plainly():
    assert isinstance(functions.train, StepFunction)
    assert functions.train.ref == "tests.unit.sdk.functions:train"
    assert functions.train.__wrapped__ is functions.train.function  # what a worker unwraps
    assert functions.train.function({"rows": [1, 2]}, lr=0.5) == {"rows": 2, "lr": 0.5, "shard": None}
    assert functions.train.options["shards"] == 3


def test_a_lambda_is_refused_with_the_fix():
    with pytest.raises(StepDefinitionError) as caught:
        step(lambda x: x)
    assert f"{__file__}:" in str(caught.value)  # the file it is written in
    assert "cannot run a lambda" in str(caught.value) and "Fix: write it as a def and move it" in str(caught.value)


def test_a_nested_function_is_refused_naming_it_and_the_fix():
    def inner():
        return 1

    with pytest.raises(StepDefinitionError) as caught:
        step(retries=1)(inner)
    message = str(caught.value)
    assert "test_a_nested_function_is_refused_naming_it_and_the_fix.<locals>.inner is defined inside another" in message
    assert "Fix: move it to the top level of a module of its own that the DAG file imports" in message


def test_a_function_of_a_script_run_as_main_is_refused(tmp_path):
    script = tmp_path / "my_dag.py"
    script.write_text("from mlbatch.sdk import step\n\n@step\ndef train():\n    return 1\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert out.returncode == 1
    assert f"{script}:3: @step function train is defined in a script run as __main__" in out.stderr
    assert "Fix: move it to the top level of a module" in out.stderr


def test_a_function_of_a_module_known_only_to_sys_modules_is_refused(tmp_path):
    """Airflow loads a DAG file under a private module name that no worker can import."""
    import importlib.util

    dag_file = tmp_path / "inline_dag.py"
    dag_file.write_text("from mlbatch.sdk import step\n\n@step\ndef train():\n    return 1\n")
    spec = importlib.util.spec_from_file_location("unusual_prefix_0123_inline_dag", dag_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        with pytest.raises(StepDefinitionError) as caught:
            spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    assert f"{dag_file}:3: @step function train is defined in module 'unusual_prefix_0123_inline_dag'" in str(caught.value)


def test_importing_the_sdk_and_a_step_module_loads_no_airflow_or_pydantic():
    code = ("import sys, json; import tests.unit.sdk.functions;"
            "print(json.dumps(sorted(m for m in ('airflow', 'pydantic', 'mlbatch.spec.models') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # what a worker pays to import a step module
