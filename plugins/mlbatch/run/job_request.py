"""One try of a step as the JobRequest every backend takes: the worker's argv, env, limits and tags."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from workers import wire

from mlbatch.backends.jobs import JobRequest
from mlbatch.backends.traits import backend_info
from mlbatch.project import PROJECT_ROOT
from mlbatch.run.step_try import StepTry

if TYPE_CHECKING:
    from mlbatch.spec.models import ResolvedStep


def job_request(step: ResolvedStep, batch_id: str, step_try: StepTry, *, upstream: dict[str, dict[str, Any]],
                artifacts: str, run_id: str, try_number: int, owner: str) -> JobRequest:
    """`upstream` maps each needed step to its XCom summary."""
    inputs = {name: summary["uri"] for name, summary in upstream.items()}
    env = wire.try_env(try_number=try_number, artifacts=artifacts, gpu=step.gpu)
    if step.command is not None:
        return _request(step, batch_id, step_try, env=env, run_id=run_id, try_number=try_number, owner=owner,
                        **_command_parts(step, step_try, inputs, env))
    step_request = wire.step_request(worker=step.run or "", params=step.params, output=step_try.output,
                                     inputs=inputs, shard_count=step_try.shard_count)
    if backend_info(step.backend).on_this_machine:  # a container has its image's code; this checkout's workers/ here
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return _request(step, batch_id, step_try, env=env, run_id=run_id, try_number=try_number, owner=owner,
                    command=wire.run_command(step_request))


def _command_parts(step: ResolvedStep, step_try: StepTry, inputs: dict[str, str],
                   env: dict[str, str]) -> dict[str, Any]:
    """A command step: its argv with the params filled in, the image contract's env, and its entrypoint:
    a container runs its image's own ENTRYPOINT before the command, a local process the command alone."""
    from mlbatch.run.image_shards import make_shard_folders, write_inputs

    make_shard_folders(step_try.output, step_try.todo)
    env.update(wire.image_env(params=step.params, inputs_uri=write_inputs(step_try.output, inputs)))
    return {"command": wire.fill_params(step.command or (), step.params), "step_output": step_try.output,
            "entrypoint": None if backend_info(step.backend).in_containers else []}


def _request(step: ResolvedStep, batch_id: str, step_try: StepTry, *, env: dict[str, str], run_id: str,
             try_number: int, owner: str, command: list[str], entrypoint: list[str] | None = None,
             step_output: str | None = None) -> JobRequest:
    return JobRequest(
        name=f"{batch_id}.{step.name}",
        image=step.image,
        command=command,
        entrypoint=entrypoint,
        step_output=step_output,
        env=env,
        vcpu=step.vcpu,
        memory_mib=step_try.memory_mib,
        gpu=step.gpu,
        shard_count=step_try.shard_count,
        shard_indices=step_try.todo,
        timeout_s=step.timeout.total_seconds(),
        start_timeout_s=step.start_timeout.total_seconds(),
        identity=step_try.key,
        queue=step.queue,
        capacity=step.capacity,
        network=step.network,
        tags={"dag": batch_id, "step": step.name, "run": run_id, "try": str(try_number), "key": step_try.key,
              "owner": owner},
    )
