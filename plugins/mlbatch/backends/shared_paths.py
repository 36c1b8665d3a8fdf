"""Which local files a docker-backend step's containers can see, where the Docker host is not this machine's view.

The docker backend bind-mounts a step's local sources (file params such as `source:`) at their own
path: right when the engine runs here, wrong under `mlbatch compose up`, where the scheduler is a
container whose paths the host's engine does not have. There only the artifact folder has the same
path on both sides: docker-compose.yaml says so in MLBATCH_DOCKER_SHARED_PATHS (folders, separated
by os.pathsep). Unset, every path of this machine is the engine's too and nothing is checked.

Lint (the docker backend's spec checks) and the backend at run time both ask here. Imported at DAG
parse time under compose: the standard library, and the worker catalogue only when the env is set.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from mlbatch.spec.checks import Issue
    from mlbatch.spec.models import StepDefaults, StepSpec

SHARED_ENV = "MLBATCH_DOCKER_SHARED_PATHS"
_FILE_INPUT = ("mlbatch_input", "file")  # workers/params.py marks params read as a file this way


def shared_folders(environ: Mapping[str, str] | None = None) -> list[Path] | None:
    """The folders the Docker host sees at the same path as this machine; None: all of them."""
    value = (os.environ if environ is None else environ).get(SHARED_ENV, "").strip()
    if not value:
        return None
    return [Path(folder).resolve() for folder in value.split(os.pathsep) if folder.strip()]


def local_file_params(worker: str | None, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(param, value as written) of each local file (a path or file://) the worker's params read directly."""
    if not worker:
        return []
    try:
        from workers.registry import get_worker

        fields = get_worker(worker).params.model_fields
    except Exception:  # an unknown or broken worker: nothing known to read (lint says so on its own)
        return []
    found = []
    for name, field in fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        value = params.get(name)
        if extra.get(_FILE_INPUT[0]) != _FILE_INPUT[1] or not isinstance(value, str):
            continue
        if "://" in value and not value.startswith("file://"):
            continue  # an object store: reached over the network, not mounted
        found.append((name, value))
    return found


def unshared_sources(worker: str | None, params: Mapping[str, Any], folders: list[Path]) -> list[tuple[str, str]]:
    """(param, value) of each local file the worker reads directly that lies outside every shared folder."""
    return [(name, value) for name, value in local_file_params(worker, params)
            # relative: from the task's folder, as the worker reads it
            if not any(Path(value.removeprefix("file://")).resolve().is_relative_to(folder) for folder in folders)]


def problem(param: str, value: str, folders: list[Path]) -> tuple[str, str]:
    """(message, fix) for one local source the step's containers cannot see."""
    shared = " or ".join(str(folder) for folder in folders)
    message = (f"params.{param} = {value!r} is a local file the step's containers cannot see: the Docker host "
               f"shares only {shared} with this Airflow (`mlbatch compose up`), so a path elsewhere means "
               "nothing, or another file, to the host's engine")
    fix = (f"put the file under {shared} (the artifact folder, the same path on the host and in every "
           f"container) and name that path in params.{param}, or use an s3:// URI (with network: host in the step)")
    return message, fix


def spec_checks(name: str, step: StepSpec, defaults: StepDefaults) -> list[Issue]:
    """The docker backend's lint: every local source of the step where its containers can see it."""
    folders = shared_folders()
    if folders is None:
        return []
    from mlbatch.spec.checks import Issue

    issues = []
    for param, value in unshared_sources(getattr(step, "run", None), step.params or {}, folders):
        message, fix = problem(param, value, folders)
        issues.append(Issue(("steps", name, "params", param), message, fix))
    return issues


def unshared_source_problem(request: Any) -> str | None:
    """At run time, lint's check on a docker JobRequest (a spec linted elsewhere, or before the env was set)."""
    folders = shared_folders()
    if folders is None:
        return None
    from mlbatch.backends.docker.isolation import step_request_of

    step = step_request_of(request)
    for param, value in unshared_sources(step.get("worker"), step.get("params") or {}, folders):
        message, fix = problem(param, value, folders)
        return f"step '{request.name}': {message}: {fix}"
    return None
