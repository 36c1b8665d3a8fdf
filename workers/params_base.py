"""The base of every worker's params model: unknown params are errors, models are built on first use.

A worker package may derive its models from `Params` (or from any pydantic model).
No `from __future__ import annotations`: pydantic would evaluate every annotation again."""
from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built on first use: a spec uses a few workers


class NoParams(Params):
    """The model of a worker declared with no params (WorkerInfo(..., params=None, ...))."""
