"""Errors a worker raises on purpose (the exit code a bad input gives is in workers.wire)."""
from __future__ import annotations

from workers.wire import BAD_INPUT_EXIT_CODE  # noqa: F401  (where the worker's tests have read it)


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
