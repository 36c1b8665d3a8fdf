"""StepTry: one try of a step past its cache check, as one value.

It goes from computing to committing, and, for a step waiting in the triggerer, rides
in the trigger's event (Airflow's database, `airflow dags test`'s resume), so it is
plain JSON: ids, URIs, numbers. No secret is ever in it.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class StepTry(BaseModel):
    model_config = ConfigDict(frozen=True)

    output: str  # the step's output URI for this cache key
    shard_count: int
    key: str  # the cache key
    ingredients: dict[str, Any]  # what went into the key (kept in the step manifest)
    todo: list[int]  # the shards this try runs (those without a committed manifest)
    started: float  # epoch seconds when the step began
    memory_mib: int  # this try's memory budget per shard (grown after an out-of-memory try)
    handle: dict[str, Any] | None = None  # a remote backend's handle, as JSON, while deferred

    @property
    def done(self) -> int:
        """Shards committed before this try."""
        return self.shard_count - len(self.todo)
