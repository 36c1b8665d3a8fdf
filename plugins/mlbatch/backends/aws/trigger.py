"""PollingTrigger: the wait of a remote step in the triggerer, so a waiting step holds no worker slot.

Ours rather than the provider's job triggers: those wrap waiters that know only
"succeeded" and "failed" (a failure is raised inside the triggerer, before mlbatch can
classify it and alert once), and know nothing of a step's shards, its start_timeout or
(ECS) its timeout. A trigger only watches and reports a `Progress`; the task resumes to
stop, classify, collect logs and commit. It holds ids and numbers only, so it
serializes trivially.

Every trigger of one kind in a triggerer shares one `SharedPoller` (aws.shared_polling): a
describe call covers up to 100 waiting jobs or tasks, whichever step waits for them, and
each trigger judges its own from that round's descriptions.
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator, Hashable

from airflow.triggers.base import BaseTrigger, TriggerEvent

from mlbatch.backends.aws.shared_polling import Describe, Session, shared_poller
from mlbatch.backends.protocols import Progress


class PollingTrigger(BaseTrigger):
    """Subclasses give what they wait for (`watched`), how it is described (`describe`, `poll_group`),
    what a round's descriptions mean (`judge`), the hook (`hook`) and what stopping means (`stop`)."""

    def __init__(self, aws_conn_id: str | None, region_name: str | None, poll_interval_s: float,
                 resume: dict[str, Any] | None) -> None:
        super().__init__()
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.poll_interval_s = poll_interval_s
        self.resume = resume or {}  # the step's own state, handed back in the event (plain JSON)

    def hook(self) -> Any:
        """The provider's hook of the service (its async client carries the Airflow connection)."""
        raise NotImplementedError

    def watched(self) -> list[str]:
        """The ids this step waits for (a job id, task ARNs)."""
        raise NotImplementedError

    async def describe(self, client: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
        """One describe call of the service (at most 100 ids): id -> its description."""
        raise NotImplementedError

    def session(self) -> Session:
        """What the shared poller opens while anything waits: this hook's async client and `describe`."""
        hook, describe = self.hook(), self.describe

        @contextlib.asynccontextmanager
        async def opened() -> AsyncIterator[Describe]:
            async with await hook.get_async_conn() as client:
                yield lambda ids: describe(client, ids)

        return opened

    def poll_group(self) -> Hashable:
        """Triggers with equal groups share one poller: the same service, connection, region and interval."""
        return (type(self).__qualname__, self.aws_conn_id, self.region_name, self.poll_interval_s)

    def judge(self, described: dict[str, dict[str, Any] | None]) -> tuple[Progress, dict[str, Any]]:
        """Where the try stands from one round (None: the service does not know that id), and what
        else the event should carry."""
        raise NotImplementedError

    async def stop(self, client: Any) -> None:
        raise NotImplementedError

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            **self.own_kwargs(), "aws_conn_id": self.aws_conn_id, "region_name": self.region_name,
            "poll_interval_s": self.poll_interval_s, "resume": self.resume})

    def own_kwargs(self) -> dict[str, Any]:
        """The subclass's own constructor arguments (ids, deadlines)."""
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # First look after one interval: a step defers right after it submits, and an event that
        # fires within a second or two of the deferral can lose a race in Airflow's scheduler that
        # fails the task (apache/airflow#66374, #72716, open in 3.3.2).
        await asyncio.sleep(self.poll_interval_s)
        poller = shared_poller(self.poll_group(), self.session(), self.poll_interval_s)
        async with contextlib.aclosing(poller.watch(self.watched())) as rounds:
            async for described in rounds:
                progress, extra = self.judge(described)
                if progress.finished:
                    yield TriggerEvent({**extra, "state": progress.value, "resume": self.resume})
                    return

    async def on_kill(self) -> None:
        """Mark failed / clear on a deferred step: stop what it waits for too."""
        async with await self.hook().get_async_conn() as client:
            await self.stop(client)
