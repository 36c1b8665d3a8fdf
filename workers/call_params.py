"""Typed params of `python.call`: a Python function run by reference (the decorator `mlbatch.sdk.step`).

Pydantic only: imported at DAG parse time by a DAG that uses `@step`.
No `from __future__ import annotations`: pydantic would evaluate every annotation again."""
from typing import Any

from pydantic import Field

from workers.params_base import Params as _Params

# How an argument says "the return value of step NAME" ({"$step": NAME}): the worker reads it from
# that step's output (its shards' result.json), so data never travels through Airflow's XCom.
STEP_REF = "$step"
# A param marked so names code ("module:qualname") whose package the cache key's code version covers.
CODE_MARK = "mlbatch_code"
SHARD_PARAMETER = "shard"  # a called function's parameter of this name gets the shard's index, count and output
FUNCTION_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"


class CallParams(_Params):
    function: str = Field(..., pattern=FUNCTION_PATTERN, description="the function, as 'module:qualname'",
                          json_schema_extra={CODE_MARK: "code"})  # its package's source (looked for in `code` first) is in the cache key
    args: list[Any] = Field([], description="positional arguments (JSON); {'$step': NAME} is NAME's return value")
    kwargs: dict[str, Any] = Field({}, description="keyword arguments (JSON), with the same step references")
    code: str | None = Field(None, description="a folder put first on the worker's sys.path (the function's "
                                               "own folder on this machine); none: the image has the module")
    image: str | None = Field(None, description="the image the function must be importable in (for messages)")
