"""One describe call covers up to 100 waiting steps; each step still gets its own description."""
from __future__ import annotations

import asyncio
import contextlib

import pytest

from mlbatch.backends.aws import shared_polling
from mlbatch.backends.aws.shared_polling import SharedPoller, shared_poller


class FakeService:
    """Describes ids it knows (status per id); records each call's ids; can throttle or break."""

    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses
        self.calls: list[list[str]] = []
        self.throttle_next = 0
        self.broken: Exception | None = None

    @contextlib.asynccontextmanager
    async def session(self):
        async def describe(ids: list[str]) -> dict[str, dict]:
            self.calls.append(list(ids))
            if self.broken is not None:
                raise self.broken
            if self.throttle_next:
                self.throttle_next -= 1
                raise _client_error("TooManyRequestsException")
            return {i: {"jobId": i, "status": self.statuses[i]} for i in ids if i in self.statuses}

        yield describe


def _client_error(code: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "slow down"}}, "DescribeJobs")


async def _first(poller: SharedPoller, key: str):
    async with contextlib.aclosing(poller.watch([key])) as described:  # as a trigger does: leaves at once
        async for item in described:
            return item[key]


def test_250_waiting_steps_cost_3_calls_a_round_and_each_gets_its_own_job():
    service = FakeService({f"job-{i}": "RUNNING" if i % 2 else "SUCCEEDED" for i in range(250)})
    poller = SharedPoller(service.session, interval_s=0.01)

    async def main():
        return await asyncio.gather(*(_first(poller, f"job-{i}") for i in range(250)))

    seen = asyncio.run(main())
    assert [job["jobId"] for job in seen] == [f"job-{i}" for i in range(250)]
    assert [job["status"] for job in seen[:2]] == ["SUCCEEDED", "RUNNING"]
    assert [len(ids) for ids in service.calls[:3]] == [100, 100, 50]
    assert sorted(sum(service.calls[:3], [])) == sorted(f"job-{i}" for i in range(250))


def test_an_unknown_id_is_reported_as_none():
    service = FakeService({"known": "RUNNING"})
    poller = SharedPoller(service.session, interval_s=0.01)

    async def main():
        return await asyncio.gather(_first(poller, "known"), _first(poller, "expired"))

    known, expired = asyncio.run(main())
    assert known["status"] == "RUNNING" and expired is None


def test_throttling_backs_the_whole_poller_off_then_resumes(monkeypatch):
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def recorded_sleep(seconds: float):
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(shared_polling.asyncio, "sleep", recorded_sleep)
    monkeypatch.setattr(shared_polling, "backoff_s", lambda attempt: 100.0 * attempt)  # the rule is aws.throttle's
    service = FakeService({"a": "RUNNING", "b": "RUNNING"})
    service.throttle_next = 3
    poller = SharedPoller(service.session, interval_s=5.0)

    async def main():
        return await asyncio.gather(_first(poller, "a"), _first(poller, "b"))

    a, b = asyncio.run(main())
    assert a["jobId"] == "a" and b["jobId"] == "b"
    assert len(service.calls) == 4  # three throttled calls, one that answered both
    assert waits[:3] == [100.0, 200.0, 300.0]  # backed off by the rule, once for everyone


def test_another_error_reaches_the_waiting_triggers():
    service = FakeService({"a": "RUNNING"})
    service.broken = _client_error("AccessDeniedException")
    poller = SharedPoller(service.session, interval_s=0.01)
    with pytest.raises(Exception, match="AccessDenied"):
        asyncio.run(_first(poller, "a"))


def test_a_step_that_stops_waiting_is_described_no_more():
    service = FakeService({"a": "RUNNING", "b": "RUNNING"})
    poller = SharedPoller(service.session, interval_s=0.01)

    async def main():
        rounds = 0
        async with contextlib.aclosing(poller.watch(["a"])) as described:
            async for _ in described:
                rounds += 1
                if rounds == 1:
                    await _first(poller, "b")
                if rounds == 3:
                    return

    asyncio.run(main())
    assert service.calls[0] == ["a"] and service.calls[-1] == ["a"]
    assert sum("b" in ids for ids in service.calls) == 1  # b left after its first description


def test_a_step_with_many_tasks_gets_them_all_in_one_round():
    service = FakeService({f"task-{i}": "RUNNING" for i in range(120)} | {"other": "STOPPED"})
    poller = SharedPoller(service.session, interval_s=0.01)

    async def step(keys):
        async with contextlib.aclosing(poller.watch(keys)) as described:
            async for tasks in described:
                return tasks

    async def main():
        return await asyncio.gather(step([f"task-{i}" for i in range(120)]), step(["other", "gone"]))

    many, few = asyncio.run(main())
    assert len(many) == 120 and all(task["status"] == "RUNNING" for task in many.values())
    assert few == {"other": {"jobId": "other", "status": "STOPPED"}, "gone": None}
    assert [len(ids) for ids in service.calls[:2]] == [100, 22]  # 122 ids: two calls for both steps


def test_one_poller_per_kind_in_a_loop():
    service = FakeService({})

    async def main():
        one = shared_poller(("batch", "aws_default", "us-east-1", 15.0), service.session, 15.0)
        same = shared_poller(("batch", "aws_default", "us-east-1", 15.0), service.session, 15.0)
        other = shared_poller(("batch", "aws_default", "eu-west-1", 15.0), service.session, 15.0)
        return one, same, other

    one, same, other = asyncio.run(main())
    assert one is same and one is not other
