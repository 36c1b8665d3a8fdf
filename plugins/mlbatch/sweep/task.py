"""The sweeper's Airflow task: the deployment's sources, the task instance states through the Task SDK.

In Airflow 3 a task never touches the metadata DB: it asks the API server, here through
RuntimeTaskInstance.get_task_states (the Task SDK's supported call from inside a task).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from mlbatch.sweep.resources import TaskStates
from mlbatch.sweep.run import Source, SweepReport, sweep

Log = Callable[[str], None]


def task_states(ti: Any) -> TaskStates:
    """get_task_states of the running task instance, as the sweep's TaskStates."""
    def states(dag_id: str, run_ids: Sequence[str], task_ids: Sequence[str]) -> Any:
        return ti.get_task_states(dag_id=dag_id, run_ids=list(run_ids), task_ids=list(task_ids))

    return states


def configured_sources(settings: Any, log: Log) -> list[Source]:
    """The Docker engine when one answers; Batch when queues are set; ECS when its subnets are (deployed)."""
    from mlbatch.backends.docker import client as engine_client
    from mlbatch.backends.docker.sweep import DockerSweepSource

    sources: list[Source] = []
    try:
        sources.append(DockerSweepSource.connect(settings.docker.host))
    except Exception as error:  # noqa: BLE001 - a deployment without Docker has no step containers
        log(f"docker: no engine at {engine_client.where(settings.docker.host)} ({type(error).__name__}): skipped")
    aws = settings.aws
    if settings.batch.queues:
        from mlbatch.backends.aws_batch.client import BatchJobs
        from mlbatch.backends.aws_batch.sweep import BatchSweepSource

        sources.append(BatchSweepSource(BatchJobs(aws.conn_id, aws.region), settings.batch.queues.values()))
    if settings.ecs.subnets:
        from mlbatch.backends.ecs.client import EcsTasks
        from mlbatch.backends.ecs.sweep import EcsSweepSource

        sources.append(EcsSweepSource(EcsTasks(aws.conn_id, aws.region), settings.ecs.cluster))
    return sources


def sweep_all(ti: Any, *, grace_s: float, only_dags: Sequence[str] = (), log: Log = print) -> SweepReport:
    """One sweep of every configured source; raises after it when anything could not be listed or stopped."""
    from mlbatch.settings import load_settings

    report = sweep(configured_sources(load_settings(), log), task_states(ti), log=log, grace_s=grace_s,
                   only_dags=only_dags)
    if report.failed:
        raise RuntimeError(f"{len(report.failed)} sweep actions failed: " + "; ".join(report.failed))
    return report
