"""Run one shard of a step: call the worker function, then commit the shard (workers.step_output)."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from workers.registry import get_worker
from workers.request import ShardResult, StepRequest
from workers.step_output import StepOutput


def run(request: StepRequest) -> dict[str, Any]:
    """Run the shard and return its committed manifest.

    The manifest is written only after the worker returned, so a shard that
    crashed half-way leaves files that no manifest lists, and counts as not done.
    """
    func = get_worker(request.worker).load()
    started = datetime.now(timezone.utc)
    result = func(request) or ShardResult()
    return StepOutput(request.output).commit_shard(
        request.shard_index,
        worker=request.worker,
        shard_count=request.shard_count,
        try_number=request.try_number,
        params=request.params,
        counts=result.counts,
        metrics={k: _finite(v) for k, v in result.metrics.items()},
        outputs=result.outputs,
        started_at=started,
        extra=result.extra,
    )


def _finite(value: Any) -> Any:
    # NaN/inf are not JSON; an undefined metric (e.g. AUC of one class) is null
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
