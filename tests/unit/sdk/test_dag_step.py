"""@step functions called in a DAG (the Airflow SDK in this process, no scheduler): the StepOperator task
each becomes, how arguments are wired, and the clear errors of a call that cannot become a step."""
from __future__ import annotations

import pytest
from airflow.sdk import DAG, task

from mlbatch.run.factory import TIMEOUT_GRACE
from mlbatch.sdk import StepDefinitionError
from mlbatch.sdk.operator import CallStepOperator, _filled
from tests.unit.sdk import functions

HERE = __file__


def _dag(build) -> DAG:
    with DAG("sdk_unit", schedule=None) as dag:
        build()
    return dag


def test_steps_become_step_operators_wired_by_their_results():
    def build():
        @task
        def rows() -> int:
            return 5

        table = functions.make_table(rows())
        functions.train(table, lr=0.3)
        functions.train(table)

    dag = _dag(build)
    make_table, train, again = (dag.task_dict[name] for name in ("make_table", "train", "train__1"))
    assert all(isinstance(t, CallStepOperator) for t in (make_table, train, again))
    assert make_table.step.params["args"] == [{"$xcom": ["rows", "return_value"]}]  # pulled when it starts
    assert make_table.step.needs == () and make_table.upstream_task_ids == {"rows"}
    assert train.step.needs == ("make_table",) and train.upstream_task_ids == {"make_table"}
    assert train.step.params == {"function": "tests.unit.sdk.functions:train", "args": [{"$step": "make_table"}],
                                 "kwargs": {"lr": 0.3}, "code": functions.__file__.rsplit("/tests/", 1)[0],
                                 "image": None}
    step = train.step
    assert (step.run, step.backend, step.memory_mib, step.vcpu, step.shards, step.retries) == (
        "python.call", "local", 1024, 2.0, 3, 1)
    assert train.execution_timeout == step.timeout + TIMEOUT_GRACE and step.timeout.total_seconds() == 600
    assert [asset.name for asset in train.outlets] == ["sdk_unit.train (output)"]  # an asset like any step's


def test_on_a_container_backend_the_image_must_hold_the_function(monkeypatch):
    monkeypatch.setenv("MLBATCH_BACKEND", "docker")
    dag = _dag(lambda: functions.make_table(3))
    step = dag.task_dict["make_table"].step
    assert (step.backend, step.params["code"], step.params["image"]) == ("docker", None, "mlbatch-worker:cpu")


def test_a_non_json_argument_names_the_dag_file_function_argument_and_fix():
    with pytest.raises(StepDefinitionError) as caught:
        _dag(lambda: functions.train({"rows": {1, 2}}))
    assert (f"{HERE}: @step tests.unit.sdk.functions:train, argument 1: set {{1, 2}} is not JSON. "
            "Fix: pass JSON values") in str(caught.value)
    assert "pass its URI" in str(caught.value)


def test_bad_resources_name_the_field_and_the_fix():
    with pytest.raises(StepDefinitionError) as caught:
        _dag(lambda: functions.badly_sized())
    message = str(caught.value)
    assert message.startswith(f"{HERE}: @step tests.unit.sdk.functions:badly_sized: step 'badly_sized', "
                              "field 'resources.memory': memory must be")
    assert "512Mi, 2Gi" in message and "got '1Gx'" in message


def test_a_gate_is_the_specs_gate_and_any_metric_on_any_shard_count_passes_lint():
    step = _dag(lambda: functions.scored(0.6)).task_dict["scored"].step
    assert (step.gate.metric, step.gate.min, step.shards) == ("auc", 0.5, 2)


def test_a_gate_without_a_threshold_names_the_dag_file_function_field_and_fix():
    with pytest.raises(StepDefinitionError) as caught:
        _dag(lambda: functions.gate_without_threshold())
    message = str(caught.value)
    assert message.startswith(f"{HERE}: @step tests.unit.sdk.functions:gate_without_threshold: step "
                              "'gate_without_threshold', field 'gate': a gate needs a threshold")
    assert "Fix: add min or max" in message


def test_a_misspelt_option_says_did_you_mean():
    with pytest.raises(StepDefinitionError) as caught:
        _dag(lambda: functions.misspelt())
    assert "field 'retires': unknown field. Fix: did you mean 'retries'?" in str(caught.value)


def test_a_call_that_does_not_fit_the_signature_shows_it():
    with pytest.raises(StepDefinitionError) as caught:
        _dag(lambda: functions.train(lr=0.1))
    assert "missing a required argument: 'table'. Fix: call it as train(table: dict, lr: float = 0.1)" in str(caught.value)
    with pytest.raises(StepDefinitionError, match="'shard' is given by the worker"):
        _dag(lambda: functions.train({}, shard=1))


def test_passing_the_function_instead_of_its_result_or_calling_outside_a_dag_says_the_fix():
    with pytest.raises(StepDefinitionError, match=r"got the @step function .*make_table itself\. Fix: pass its result"):
        _dag(lambda: functions.train(functions.make_table))
    with pytest.raises(StepDefinitionError, match=r"called outside a DAG\. .*make_table\.function\(\.\.\.\)"):
        functions.make_table(3)


def test_a_plain_tasks_result_is_filled_in_when_the_step_starts():
    params = {"args": [{"$xcom": ["rows", "return_value"]}], "kwargs": {"x": [{"$xcom": ["cfg", "lr"]}]}}
    pulled = _filled(params, lambda task_id, key: f"{task_id}/{key}")
    assert pulled == {"args": ["rows/return_value"], "kwargs": {"x": ["cfg/lr"]}}


def test_a_step_function_written_in_the_dag_file_itself_is_that_files_import_error(tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "inline.py").write_text(
        "from airflow.sdk import DAG\nfrom mlbatch.sdk import step\n\n@step\ndef train():\n    return 1\n\n"
        "with DAG('inline', schedule=None):\n    train()\n")
    bag = DagBag(dag_folder=str(tmp_path))
    [(path, message)] = bag.import_errors.items()
    assert path.endswith("inline.py") and bag.dag_ids == []
    assert f"{tmp_path / 'inline.py'}:4: @step function train is defined in module" in message
    assert "Fix: move it to the top level of a module of its own that the DAG file imports" in message


def test_a_plain_tasks_result_that_is_not_json_fails_the_step_before_anything_runs():
    from airflow.sdk.exceptions import AirflowFailException

    step = _dag(lambda: functions.make_table(task(lambda: 3, task_id="rows")())).task_dict["make_table"]
    pulls = []

    class TaskInstance:  # the one call the operator makes before the StepOperator takes over
        def xcom_pull(self, task_ids, key):
            pulls.append((task_ids, key))
            return {1, 2}

    with pytest.raises(AirflowFailException, match="step make_table: an argument from a plain task is not JSON"):
        step.execute({"ti": TaskInstance()})
    assert pulls == [("rows", "return_value")]
