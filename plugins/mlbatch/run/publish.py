"""What a step hands on once its output is committed (or found in the cache): the XCom summary,
the latest.json pointer, and the MLflow record of a model step."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workers.artifacts import latest_pointer_uri, publish_latest, read_json

if TYPE_CHECKING:
    from mlbatch.spec.models import ResolvedStep


def summary(key: str, output: str, manifest: dict[str, Any], *, cache_hit: bool) -> dict[str, Any]:
    """The XCom summary, from the committed manifest alone: the same on a hit as on the run that computed it."""
    run = manifest.get("run") or {}
    return {
        "key": key,
        "uri": output,
        "shard_count": manifest["shard_count"],
        "shards_run": run.get("shards_run", []),
        "counts": manifest.get("counts", {}),
        "metrics": manifest.get("metrics", {}),
        "peak_rss_mib": run.get("peak_rss_mib", 0.0),
        "usage": run.get("usage"),
        "computed_by": run.get("run_id"),
        "cache_hit": cache_hit,
    }


def point_latest(root: str, batch_id: str, step: str, output: str, manifest: dict[str, Any], run_id: str) -> bool:
    """Point the step's latest.json here; left alone (False) when it already does (a hit rewrites nothing)."""
    pointer = latest_pointer_uri(root, batch_id, step)
    computed_by = (manifest.get("run") or {}).get("run_id", run_id)
    try:
        if read_json(pointer) == {"uri": output, "run_id": computed_by}:
            return False
    except (FileNotFoundError, ValueError):
        pass
    publish_latest(root, batch_id, step, output, computed_by)
    return True


def _tracking_on(step: ResolvedStep) -> bool:
    from mlbatch.settings import load_settings
    from workers.registry import get_worker

    return step.run is not None and get_worker(step.run).tracked and load_settings().tracking.mlflow


def preload_tracking(step: ResolvedStep) -> None:
    """For a tracked step about to run its workers: import mlflow meanwhile, not after the last shard."""
    if _tracking_on(step):
        from mlbatch.tracking.steps import preload

        preload()


def tracked(step: ResolvedStep, batch_id: str, run_id: str, root: str, step_summary: dict[str, Any],
            manifest: dict[str, Any], log: Any) -> dict[str, Any]:
    """Log a model step to MLflow (a hit logs nothing and names the run that computed it)."""
    if not _tracking_on(step):
        return step_summary
    from mlbatch.tracking.content import StepRecord
    from mlbatch.tracking.steps import track_step

    record = StepRecord(batch_id, step_summary["computed_by"] or run_id, step.name, step.run,
                        step_summary["key"], manifest)
    where = track_step(record, root=root, cache_hit=step_summary["cache_hit"], log=log)
    return {**step_summary, "mlflow": where} if where else step_summary
