"""Airflow assets of batch steps: every step's output is an asset, and a batch may be scheduled on them.

Imported at DAG parse time (by the factory): the Airflow SDK only.

Identity: name "BATCH.STEP (output)" (`schedule.after` and a `model:` param say BATCH.STEP), URI
"x-mlbatch://output/BATCH/STEP", group "mlbatch": in the UI's lists an asset reads as a step's
output, never as a link named like the batch's DAG. The URI names the step, not a storage location:
each cache key puts a step's output in a new folder, and the artifact root is only known at
run time; every event's extra carries the concrete output and manifest URIs instead. Airflow
passes an "x-" scheme through as it is, while any other scheme that core does not handle
(s3:// included) makes it load the providers' URI normalizers while parsing, which imports
boto3 through the Amazon provider.

Events: a step emits one when its latest.json pointer moves (a new commit, or a cache hit
that points latest back at an older output); a cache hit that leaves latest where it was
emits none, so batches scheduled after the step run only when its output really changed.
"""
from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable

from mlbatch.spec.schedules import AfterSchedule, split_ref

SCHEME = "x-mlbatch"
GROUP = "mlbatch"
KIND = "output"  # the URI's host: what the asset is, where a DAG id would be mistaken for the DAG


def step_asset(dag_id: str, step: str) -> Asset:
    return Asset(name=f"{dag_id}.{step} ({KIND})", uri=f"{SCHEME}://{KIND}/{dag_id}/{step}", group=GROUP)


def dag_schedule(schedule: str | AfterSchedule | None) -> Any:
    """The DAG's `schedule` argument: the string as it is, or the assets (AND), with a cron OR-ed in."""
    if not isinstance(schedule, AfterSchedule):
        return schedule
    assets = [step_asset(*split_ref(ref)) for ref in schedule.after]
    if schedule.cron is None:
        return assets
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(schedule.cron, timezone="UTC"), assets=assets)


def event_extra(key: str, output: str, manifest: dict[str, Any], *, cache_hit: bool) -> dict[str, Any]:
    """What an asset event says about the output it announces (shown in the UI's asset view)."""
    from workers.step_output import StepOutput

    return {
        "uri": output,
        "manifest": StepOutput(output).manifest_uri,
        "cache_key": key,
        "cache_hit": cache_hit,
        "computed_by": (manifest.get("run") or {}).get("run_id"),
        "committed_at": manifest.get("committed_at"),
        "metrics": manifest.get("metrics", {}),
        "counts": manifest.get("counts", {}),
    }


def announce(task: Any, outlet_events: Any, extra: dict[str, Any], *, moved: bool) -> None:
    """Give the step's asset event its extra, or withdraw the event when latest.json did not move.

    Airflow emits an event for every outlet a task declares once it succeeds; clearing the
    outlets of this running task instance is how a step says "nothing new".
    """
    assets = [outlet for outlet in task.outlets if isinstance(outlet, Asset)]
    if not moved:
        task.outlets = []
        task.log.info("asset %s: no new event (cache hit; latest.json already points at this output)",
                      ", ".join(asset.name for asset in assets) or "-")
        return
    for asset in assets:
        outlet_events[asset].extra = extra
        task.log.info("asset %s: event for %s (cache key %s%s)", asset.name, extra["uri"], extra["cache_key"],
                      ", a cache hit" if extra["cache_hit"] else "")
