"""Errors a worker raises on purpose (the exit code a bad input gives is in workers.wire)."""
from __future__ import annotations

from workers.wire import BAD_INPUT_EXIT_CODE, TRANSIENT_EXIT_CODE  # noqa: F401  (where the worker's tests have read them)


class BadInput(Exception):
    """The step's input or params are wrong: fail fast, never retry.

    The message is shown to the user as one line, so it should name the file,
    the column or the field, and what was expected.
    """


class MissingShards(FileNotFoundError):
    """A step cannot be committed because some shards have no manifest yet."""

    def __init__(self, output: str, missing: list[int]):
        self.output = output
        self.missing = missing
        shown = ", ".join(str(i) for i in missing[:20]) + (" ..." if len(missing) > 20 else "")
        super().__init__(f"step at {output} is missing {len(missing)} shard manifest(s): {shown}")


# Error codes S3 (and botocore) give for a failure on their side or in between, never for a bad request.
_TRANSIENT_CODES = frozenset({
    "InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "RequestTimeTooSkewed", "Throttling",
    "ThrottlingException", "RequestLimitExceeded", "500", "502", "503", "504",
})
# Exception types (by name: workers import no AWS or HTTP client to classify) raised when a
# connection drops, times out or a read ends early.
_TRANSIENT_TYPES = frozenset({
    "ConnectionError", "ConnectionResetError", "ConnectionAbortedError", "ConnectionRefusedError", "TimeoutError",
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
    "IncompleteReadError", "ResponseStreamingError", "ServerDisconnectedError", "ClientConnectorError",
    "ClientPayloadError", "ClientOSError", "ProtocolError", "RemoteDisconnected", "IncompleteRead",
})


class Transient(Exception):
    """The machine or a service failed under the step (disk full, S3 or network hiccup): retry it."""


def disk_full(exc: BaseException) -> str | None:
    """'disk full at PATH' when `exc` (or what caused it) is ENOSPC or EDQUOT, else None."""
    import errno

    for error in _chain(exc):
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"disk full at {error.filename or _fullest_folder()}"
    return None


def _fullest_folder() -> str:
    """Where a write without a file name most likely failed: the fuller of the work and temp folders."""
    import os
    import tempfile

    def free(path: str) -> int:
        try:
            stats = os.statvfs(path)
        except OSError:
            return 1 << 62
        return stats.f_bavail * stats.f_frsize

    return min((os.getcwd(), tempfile.gettempdir()), key=free)


def transient_cause(exc: BaseException) -> str | None:
    """Why `exc` is the infrastructure's fault (disk full, dropped connection, S3 5xx); None if it is not."""
    if full := disk_full(exc):
        return full
    for error in _chain(exc):
        names = {cls.__name__ for cls in type(error).__mro__}
        code = str(getattr(error, "response", {}).get("Error", {}).get("Code", "")) \
            if isinstance(getattr(error, "response", None), dict) else ""
        status = getattr(error, "status", None) or getattr(error, "status_code", None)
        if names & _TRANSIENT_TYPES or code in _TRANSIENT_CODES or (isinstance(status, int) and status >= 500):
            return f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
    return None


def _chain(exc: BaseException):
    """`exc` and the exceptions it was raised from or during (cycles cut)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
