"""What to do with containers a previous try (or a restarted task) left for the same identity and shard.

The labels mlbatch.identity + mlbatch.shard find them (config.identity_filter). The rule:
- one is still running (or created, paused, restarting): ADOPT it: follow its logs and wait for it,
  never start a duplicate that would compute the same output twice;
- one exited with 0: COLLECT it: its output is written, read its state and remove it;
- only failed or dead ones: remove them and START afresh (that is what the retry is for).

Pure: decides from the `docker inspect` State mappings, so it is unit-tested without an engine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping, Sequence

_LIVE = ("running", "created", "restarting", "paused")


class Action(str, Enum):
    start = "start"
    adopt = "adopt"
    collect = "collect"


@dataclass(frozen=True)
class Found:
    """One existing container: its id, inspect State and creation time (RFC 3339, sorts as text)."""

    id: str
    state: Mapping[str, Any]
    created: str = ""

    @classmethod
    def of(cls, attrs: Mapping[str, Any]) -> Found:
        return cls(id=str(attrs.get("Id", "")), state=attrs.get("State") or {}, created=str(attrs.get("Created", "")))

    @property
    def status(self) -> str:
        return str(self.state.get("Status", ""))


@dataclass(frozen=True)
class Plan:
    action: Action
    target: Found | None = None  # the container to adopt or collect
    stale: list[Found] = field(default_factory=list)  # to remove (failed earlier tries, duplicates)


def plan_shard(found: Sequence[Found]) -> Plan:
    """The plan for one shard given the containers already there for its identity."""
    newest_first = sorted(found, key=lambda f: f.created, reverse=True)
    live = [f for f in newest_first if f.status in _LIVE]
    if live:
        return Plan(Action.adopt, live[0], [f for f in newest_first if f is not live[0] and f not in live])
    succeeded = [f for f in newest_first if f.status == "exited" and f.state.get("ExitCode") == 0]
    if succeeded:
        return Plan(Action.collect, succeeded[0], [f for f in newest_first if f is not succeeded[0]])
    return Plan(Action.start, None, list(newest_first))
