"""A shard's environment, the same on every backend: thread caps, unbuffered output, the request's
env and the shard's identity, over what the backend passes through (nothing of Airflow's).
"""
from __future__ import annotations

from typing import Mapping

from workers import wire

from mlbatch.backends.jobs import JobRequest
from mlbatch.backends.threads import thread_env

# Variables a worker must not see when a backend passes an environment through: Airflow's own
# configuration and secrets (database URL, connections, variables). Workers know nothing of Airflow,
# and a worker on AWS Batch or ECS would not have them either.
DROPPED_ENV_PREFIXES = ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")


def shard_environment(request: JobRequest, shard: Mapping[str, str],
                      passed: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of one shard (or one array job): `shard` is its wire.shard_env, `passed` what the
    backend hands down from this process (the local backend: its environment; docker: [docker] pass_env)."""
    env = {key: value for key, value in (passed or {}).items() if not key.startswith(DROPPED_ENV_PREFIXES)}
    env.update(thread_env(request.vcpu))
    env["PYTHONUNBUFFERED"] = "1"  # stream log lines as they are printed, not at exit
    env.update(request.env)
    env.update(shard)
    if request.step_output is not None:
        env[wire.STEP_OUTPUT] = request.step_output
    if request.step_output is not None and wire.SHARD_INDEX in shard:  # array children share one environment
        from workers.step_output import StepOutput

        env[wire.OUTPUT] = StepOutput(request.step_output).shard_dir(int(shard[wire.SHARD_INDEX]))
    return env


def shard_command(request: JobRequest, index: int | None) -> list[str]:
    """The command of one shard: an image step's {shard.index} and {shard.count} filled in.

    `index` None: one command for every child of an array job, which cannot name its own shard.
    """
    if request.step_output is None:
        return list(request.command)
    if index is None:
        if any(name.startswith("shard.") for name in wire.placeholders(request.command)):
            raise ValueError(f"{request.name}: the children of one array job share one command, so it cannot "
                             "hold {shard.index}: read the shard from the environment (docs/image-steps.md)")
        return list(request.command)
    return wire.fill_shard(request.command, index, request.shard_count)
