"""What mlbatch writes on and reads back from AWS the same way for Batch and ECS. Pure: no AWS calls."""
from __future__ import annotations

from mlbatch.backends.jobs import JobRequest

# Our TerminateJob / StopTask reason: Airflow marked the step failed or killed it, or mlbatch
# stopped it for a deadline. Classifying reads it back, so it stays a fixed prefix.
CANCEL_REASON = "mlbatch: cancelled"
STOPPED_BY_AIRFLOW = f"{CANCEL_REASON} (the Airflow task was stopped)"
OOM_EXIT_CODE = 137  # SIGKILL from the container runtime: what a memory kill looks like
TAG_PREFIX = "mlbatch:"


def job_tags(request: JobRequest) -> dict[str, str]:
    """Tags on the job or task (and, propagated, on what runs it): cost per batch, step and run; reattach."""
    return {f"{TAG_PREFIX}{key}": str(value)[:256] for key, value in sorted(request.tags.items())}


def summary_line(name: str, statuses: dict[int, str], noun: str = "children") -> str:
    """'churn.train: 5 children: 3 succeeded, 2 failed (shards 1,4)'."""
    counts: dict[str, list[int]] = {}
    for shard, status in sorted(statuses.items()):
        counts.setdefault(status, []).append(shard)
    parts = [f"{len(shards)} {status.lower()}" for status, shards in sorted(counts.items())]
    failed = counts.get("FAILED", [])
    tail = f" (shards {','.join(map(str, failed[:50]))}{',...' if len(failed) > 50 else ''})" if failed else ""
    return f"{name}: {len(statuses)} {noun}: {', '.join(parts)}{tail}"
