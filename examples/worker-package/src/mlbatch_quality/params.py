"""Typed params of quality.nulls: `mlbatch lint` checks a spec's params against this model."""
from pydantic import Field

from workers.params_base import Params


class NullsParams(Params):
    table: str = Field("features", description="output key of the input step that holds the table")
    columns: list[str] | None = Field(None, description="columns to check (default: every column)")

