"""One poller for many waiting steps: every step waiting in this triggerer shares its describe calls.

The provider's triggers (and a naive trigger of our own) make one DescribeJobs call per waiting
job per poll, so 1,000 waiting steps cost 1,000 calls every interval, against an account-wide
API rate. Here every trigger of one kind (service, connection, region, cluster, interval) that
runs in the same triggerer process registers its id with one `SharedPoller`, which describes up
to `batch_size` ids per call (DescribeJobs and DescribeTasks both take 100) and hands each
trigger its own description. Throttling backs the whole poller off at once, by the one rule of
aws.throttle.

Airflow 3.3's own shared streams (BaseEventTrigger.shared_stream_key) fan one stream out to many
triggers, but open it from the kwargs of one trigger of the group, so the stream cannot learn the
set of job ids its subscribers wait for; this poller keeps that set.

Nothing of this is serialized: a trigger still holds only its ids and numbers, and after a
triggerer restart the re-created triggers simply register again.
"""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Hashable, Sequence

from mlbatch.backends.aws.throttle import backoff_s, is_throttled

# What one call returns: id -> its description; an id the service no longer knows is absent.
Describe = Callable[[list[str]], Awaitable[dict[str, dict[str, Any]]]]
# Opens what the describe calls need (an aiobotocore client) for as long as anything is watched.
Session = Callable[[], contextlib.AbstractAsyncContextManager[Describe]]


@dataclass
class SharedPoller:
    """Describes every watched id once per `interval_s`, `batch_size` ids a call."""

    session: Session
    interval_s: float
    batch_size: int = 100
    _watchers: dict[int, tuple[tuple[str, ...], asyncio.Queue]] = field(default_factory=dict)
    _task: asyncio.Task | None = None

    async def watch(self, keys: Sequence[str]) -> AsyncIterator[dict[str, dict[str, Any] | None]]:
        """Once a round: the description of each of `keys` (None where the service does not know it).

        Use it inside `contextlib.aclosing(...)`, so a step that stops waiting leaves the poller
        at once, not whenever the abandoned generator is collected.
        """
        queue: asyncio.Queue = asyncio.Queue()
        token = id(queue)
        self._watchers[token] = (tuple(keys), queue)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._watchers.pop(token, None)

    async def _run(self) -> None:
        # Checked again after the session closes (an await): a watcher that came meanwhile is served.
        while self._watchers:
            async with self.session() as describe:
                await self._rounds(describe)

    async def _rounds(self, describe: Describe) -> None:
        attempt = 0
        while self._watchers:
            keys = sorted({key for watched, _ in self._watchers.values() for key in watched})
            found: dict[str, dict[str, Any]] = {}
            try:
                for start in range(0, len(keys), self.batch_size):
                    found.update(await describe(keys[start:start + self.batch_size]))
                attempt = 0
            except Exception as error:  # noqa: BLE001 - handed to its watchers, never lost inside a task
                if is_throttled(error):
                    attempt += 1
                    await asyncio.sleep(backoff_s(attempt))
                    continue
                self._deliver(lambda watched: error)
            else:
                self._deliver(lambda watched: {key: found.get(key) for key in watched})
            await asyncio.sleep(self.interval_s)

    def _deliver(self, item_for: Callable[[tuple[str, ...]], Any]) -> None:
        for watched, queue in list(self._watchers.values()):
            queue.put_nowait(item_for(watched))


_POLLERS: dict[tuple[int, Hashable], SharedPoller] = {}


def shared_poller(kind: Hashable, session: Session, interval_s: float) -> SharedPoller:
    """The one poller of this event loop for `kind` (service, connection, region, cluster, interval)."""
    loop_id = id(asyncio.get_running_loop())
    for key in [k for k, poller in _POLLERS.items() if k[0] != loop_id and not poller._watchers]:
        del _POLLERS[key]  # pollers of loops that are gone (tests run many loops)
    poller = _POLLERS.get((loop_id, kind))
    if poller is None:
        poller = _POLLERS[(loop_id, kind)] = SharedPoller(session, interval_s)
    return poller
