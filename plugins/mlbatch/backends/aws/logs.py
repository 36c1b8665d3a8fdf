"""What a remote step prints when its jobs/tasks end: each shard's own log lines, capped.

Shared by the AWS Batch and ECS backends, whose remote units differ (array children,
tasks) but whose report must read the same: every line when there are few shards,
otherwise only the tails of the first failed ones, then one failure block per failure.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from mlbatch.backends.failures import failure_block, shard_prefix
from mlbatch.backends.jobs import ShardOutcome

LOG_EVERY_SHARD_UP_TO = 10  # more shards: the summary line and each failed shard's tail only
LOG_TAIL_LINES = 20
MAX_FAILED_LOGS = 20  # a 10,000-shard step that fails everywhere shows this many tails


def last_lines(client: Any, group: str, stream: str) -> list[str]:
    """The newest lines of a CloudWatch Logs stream in one GetLogEvents call: up to 10,000 lines or 1 MB, the
    end of the log, which is what a task log and a failure's tail show (reading from the head takes a
    second call just to learn that the stream ended)."""
    response = client.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=False, limit=10_000)
    return [event["message"] for event in response.get("events", [])]


@dataclass(frozen=True)
class FinishedShard:
    index: int
    ref: str | None  # what its log lines are fetched by: a job id, a task ARN
    described: dict[str, Any] | None  # the service's description of it (None: never ran)
    failed: bool


def report_shards(
    shards: list[FinishedShard],
    *,
    name: str,
    shard_count: int,
    fetch_lines: Callable[[str], list[str]],
    to_outcome: Callable[[FinishedShard, list[str]], ShardOutcome],
    log: Callable[[str], None],
    nouns: tuple[str, str],
) -> list[ShardOutcome]:
    """Print the shards' log lines within the caps and return their outcomes, in shard order.
    `nouns`: what one remote unit is called in a log line, and what many are ("job", "children")."""
    one, many = nouns
    log_all = len(shards) <= LOG_EVERY_SHARD_UP_TO
    outcomes, failed_logs = [], 0
    for shard in shards:
        lines: list[str] = []
        if shard.ref and (log_all or (shard.failed and failed_logs < MAX_FAILED_LOGS)):
            lines = fetch_lines(shard.ref)
            failed_logs += shard.failed
            prefix = shard_prefix(shard.index, shard_count)
            shown = lines if log_all else lines[-LOG_TAIL_LINES:]
            if not log_all:
                log(f"{prefix} last {len(shown)} log lines of failed {one} {shard.ref}:")
            for line in shown:
                log(f"{prefix} {line}")
        outcomes.append(to_outcome(shard, lines))
    failures = [item for item in outcomes if item.failure is not None]
    if len(failures) > MAX_FAILED_LOGS:
        rest = failures[MAX_FAILED_LOGS:]
        log(f"{name}: {len(rest)} more failed {many} not shown in full (shards "
            f"{','.join(str(o.index) for o in rest[:50])}{',...' if len(rest) > 50 else ''})")
    for item in failures[:MAX_FAILED_LOGS]:
        log(failure_block(failure=item.failure, reason=item.reason, shard_index=item.index,
                          shard_count=shard_count, exit_code=item.exit_code, signal=None,
                          stderr_tail=item.stderr_tail, name=name))
    return sorted(outcomes, key=lambda o: o.index)
