"""EcsTasks: everything mlbatch asks Amazon ECS and CloudWatch Logs, through the Amazon provider.

The provider's EcsHook gives the connection (credentials, region, endpoint from the
Airflow connection) and AwsLogsHook the log lines; RunTask with backoff, the lookup of a
live task by its startedBy (reattach) and task definition bookkeeping are ours: the
provider's EcsRunTaskOperator runs one task per operator and has no notion of shards.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from mlbatch.backends.aws.logs import last_lines
from mlbatch.backends.aws.throttle import call_with_backoff
from mlbatch.backends.ecs.outcome import LIVE
from mlbatch.backends.ecs.submission import CONTAINER

DESCRIBE_CHUNK = 100
LOG_STREAM_PREFIX = "mlbatch"  # awslogs-stream-prefix: streams are mlbatch/worker/<task id>


class EcsTasks:
    def __init__(self, conn_id: str | None, region: str | None, *, sleep: Callable[[float], None] = time.sleep,
                 hook: Any = None, logs_hook: Any = None) -> None:
        self._conn_id, self._region, self._sleep = conn_id, region, sleep
        self._hook, self._logs_hook = hook, logs_hook
        self._stopped: dict[str, dict[str, Any]] = {}  # task ARN -> its final (STOPPED) description

    @property
    def client(self) -> Any:
        if self._hook is None:
            from airflow.providers.amazon.aws.hooks.ecs import EcsHook

            self._hook = EcsHook(aws_conn_id=self._conn_id, region_name=self._region)
        return self._hook.get_conn()

    def run(self, args: dict[str, Any]) -> dict[str, Any]:
        """RunTask, backing off when throttled; a placement failure comes back as the task's failure."""
        response = call_with_backoff(lambda: self.client.run_task(**args), sleep=self._sleep)
        if response.get("tasks"):
            return response["tasks"][0]
        failures = response.get("failures") or [{}]
        return {"taskArn": None, "lastStatus": "STOPPED", "stopCode": "TaskFailedToStart",
                "stoppedReason": f"RunTask placed no task: {failures[0].get('reason', 'unknown')}",
                "containers": []}

    def find_live(self, cluster: str, started_by: str) -> dict[str, Any] | None:
        arns = self.client.list_tasks(cluster=cluster, startedBy=started_by, desiredStatus="RUNNING").get("taskArns", [])
        live = [task for task in self.describe(cluster, arns) if task.get("lastStatus") in LIVE]
        return max(live, key=lambda task: str(task.get("createdAt", "")), default=None)

    def describe(self, cluster: str, arns: list[str]) -> list[dict[str, Any]]:
        """The tasks' descriptions; a STOPPED task's is final and kept, so collecting it asks no more."""
        pending = [arn for arn in arns if arn not in self._stopped]
        fresh: dict[str, dict[str, Any]] = {}
        for start in range(0, len(pending), DESCRIBE_CHUNK):
            for task in self.client.describe_tasks(cluster=cluster, tasks=pending[start:start + DESCRIBE_CHUNK],
                                                   include=["TAGS"]).get("tasks", []):
                fresh[task["taskArn"]] = task
                if task.get("lastStatus") == "STOPPED":
                    self._stopped[task["taskArn"]] = task
        return [self._stopped.get(arn) or fresh[arn] for arn in arns if arn in self._stopped or arn in fresh]

    def stop(self, cluster: str, arn: str, reason: str) -> None:
        self.client.stop_task(cluster=cluster, task=arn, reason=reason[:255])

    def log_lines(self, log_group: str, task_arn: str | None) -> list[str]:
        if not task_arn:
            return []
        stream = f"{LOG_STREAM_PREFIX}/{CONTAINER}/{task_arn.rsplit('/', 1)[-1]}"
        try:
            return last_lines(self._logs().conn, log_group, stream)
        except Exception:  # noqa: BLE001 - no stream: the task never started or logs expired
            return []

    def active_definition(self, family: str) -> dict[str, Any] | None:
        try:
            found = self.client.describe_task_definition(taskDefinition=family, include=["TAGS"])
        except Exception as exc:  # ClientException: no such family
            if "ClientException" in type(exc).__name__ or "ClientException" in str(exc):
                return None
            raise
        tags = {tag["key"]: tag["value"] for tag in found.get("tags", [])}
        return {**found["taskDefinition"], "tags": tags}

    def register_definition(self, definition: dict[str, Any]) -> str:
        args = dict(definition)
        args["tags"] = [{"key": k, "value": v} for k, v in sorted(args.get("tags", {}).items())]
        return self.client.register_task_definition(**args)["taskDefinition"]["taskDefinitionArn"]

    def _logs(self) -> Any:
        if self._logs_hook is None:
            from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

            self._logs_hook = AwsLogsHook(aws_conn_id=self._conn_id, region_name=self._region)
        return self._logs_hook
