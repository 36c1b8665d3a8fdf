"""Typed params of the check workers (workers/checks.py). Pydantic only."""
from pydantic import Field

from workers.params_base import Params as _Params


class SleepParams(_Params):
    seconds: float = Field(1.0, ge=0)


class MemoryParams(_Params):
    mib: int = Field(..., gt=0, description="resident memory to allocate and touch")
    hold_seconds: float = Field(1.0, ge=0)


class FailParams(_Params):
    fail_tries: int = Field(1_000_000, ge=0, description="fail while the try number is at most this")
    fail_shards: list[int] | None = Field(None, description="only these shards fail (default: all)")
    bad_input: bool = Field(False, description="fail as bad input (exit 65) instead of a crash")
    message: str = "requested failure"
    print_env: list[str] = Field([], description="environment variables to print to stderr first")
