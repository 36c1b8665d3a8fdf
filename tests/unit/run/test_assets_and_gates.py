"""Steps publish assets that other batches schedule on; a gate decides whether an output is published."""
from __future__ import annotations

import logging
import textwrap

import pytest
from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable
from airflow.sdk.definitions.timetables.assets import AssetTriggeredTimetable
from airflow.sdk.exceptions import AirflowSkipException
from airflow.sdk.execution_time.context import OutletEventAccessors

from mlbatch.run.assets import announce, event_extra, step_asset
from mlbatch.run.factory import build_dag
from mlbatch.backends.failures import FailureClass
from mlbatch.run.gates import NEXT_STEP, enforce_gate
from mlbatch.run.step_errors import StepFailedFast

PRODUCER = """
    steps:
      features: {run: features.synthetic}
      ensemble: {run: ensemble.average, needs: [features], gate: {metric: auc, min: 0.8}}
      drift: {run: drift.features, needs: [features], params: {reference: x.y}, gate: {metric: drift, min: 0.1, on_fail: skip}}
"""
LOG = logging.getLogger(__name__)
MANIFEST = {"committed_at": "2026-11-25T10:00:00.000+00:00", "run": {"run_id": "manual__1"},
            "metrics": {"auc": 0.84}, "counts": {"models": 5}}


def _dag(folder, name, text):
    (folder / "specs").mkdir(exist_ok=True)
    (folder / "specs" / f"{name}.yaml").write_text(textwrap.dedent(text))
    return build_dag(str(folder / f"{name}.py"), f"specs/{name}.yaml")


@pytest.fixture
def producer(tmp_path):
    return _dag(tmp_path, "producer", PRODUCER)


def test_every_step_declares_its_own_asset(producer):
    assert producer.get_task("ensemble").outlets == [
        Asset(name="producer.ensemble (output)", uri="x-mlbatch://output/producer/ensemble", group="mlbatch")]
    assert {task.outlets[0].name for task in producer.tasks} == {"producer.features (output)",
                                                                 "producer.ensemble (output)", "producer.drift (output)"}
    assert "Published only when `auc >= 0.8`" in producer.get_task("ensemble").doc_md


def test_a_batch_after_another_is_scheduled_on_that_steps_asset(tmp_path, producer):
    consumer = _dag(tmp_path, "consumer", "schedule: {after: [producer.ensemble]}\nsteps:\n  s: {run: check.noop}\n")
    assert isinstance(consumer.timetable, AssetTriggeredTimetable)
    [asset] = consumer.timetable.asset_condition.objects
    assert asset == producer.get_task("ensemble").outlets[0]  # the same asset the producer's step emits
    assert "Runs when `producer.ensemble` committed a new output." in consumer.doc_md


def test_after_with_a_cron_is_an_asset_or_time_schedule(tmp_path, producer):
    consumer = _dag(tmp_path, "consumer", """
        schedule: {after: [producer.ensemble, producer.features], cron: "0 6 * * *"}
        steps:
          s: {run: check.noop}
    """)
    assert isinstance(consumer.timetable, AssetOrTimeSchedule)
    assert consumer.timetable.timetable == CronTriggerTimetable("0 6 * * *", timezone="UTC")
    assert [a.name for a in consumer.timetable.asset_condition.objects] == ["producer.ensemble (output)",
                                                                             "producer.features (output)"]
    assert "and on `0 6 * * *`" in consumer.doc_md


def test_an_asset_reads_as_a_steps_output_and_its_uri_needs_no_provider():
    asset = step_asset("team.churn", "model")
    assert (asset.name, asset.uri, asset.group) == ("team.churn.model (output)", "x-mlbatch://output/team.churn/model",
                                                    "mlbatch")


def test_no_asset_is_named_or_hosted_like_its_batch(producer):
    """The UI lists an asset by its name and shows its URI: neither may read as the batch's DAG."""
    from urllib.parse import urlsplit

    for task in producer.tasks:
        [asset] = task.outlets
        assert asset.name.split(" ")[0] != producer.dag_id and urlsplit(asset.uri).netloc != producer.dag_id


def test_the_event_extra_says_where_the_output_is_and_how_good(tmp_path):
    extra = event_extra("abc123", str(tmp_path / "out"), MANIFEST, cache_hit=True)
    assert extra == {"uri": str(tmp_path / "out"), "manifest": str(tmp_path / "out" / "manifest.json"),
                     "cache_key": "abc123", "cache_hit": True, "computed_by": "manual__1",
                     "committed_at": MANIFEST["committed_at"], "metrics": {"auc": 0.84}, "counts": {"models": 5}}


def test_a_moved_latest_gets_an_event_with_its_extra_and_an_unmoved_one_none(producer):
    task, events = producer.get_task("ensemble"), OutletEventAccessors()
    extra = event_extra("abc123", "/a/out", MANIFEST, cache_hit=False)
    announce(task, events, extra, moved=True)
    assert events[task.outlets[0]].extra == extra

    unmoved = producer.get_task("features")
    announce(unmoved, OutletEventAccessors(), extra, moved=False)
    assert unmoved.outlets == []  # Airflow emits events for the outlets a successful task declares


def test_a_model_that_passes_its_gate_goes_through(producer, caplog):
    caplog.set_level(logging.INFO)
    enforce_gate(producer.get_task("ensemble").step, "producer", "abc123", MANIFEST, LOG)
    assert "gate passed: auc = 0.84 (auc >= 0.8)" in caplog.text
    enforce_gate(producer.get_task("features").step, "producer", "abc123", {"metrics": {}}, LOG)  # no gate


def test_a_model_below_its_gate_fails_fast_as_bad_input_with_its_own_next_step(producer):
    worse = {**MANIFEST, "metrics": {"auc": 0.7312}}
    with pytest.raises(StepFailedFast) as failed:
        enforce_gate(producer.get_task("ensemble").step, "producer", "abc123", worse, LOG)
    details = failed.value.details
    assert details.failure is FailureClass.bad_input and details.next_step == NEXT_STEP
    assert details.reason.startswith("gate failed: auc 0.7312 is below the minimum 0.8; not published")
    assert "producer.ensemble" in details.reason and "abc123" in details.reason


def test_a_skip_gate_skips_instead(producer):
    with pytest.raises(AirflowSkipException, match="gate not met: drift 0.02 is below the minimum 0.1"):
        enforce_gate(producer.get_task("drift").step, "producer", "abc123", {"metrics": {"drift": 0.02}}, LOG)
