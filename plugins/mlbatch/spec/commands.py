"""Command steps (`image:` + `command:` instead of `run:`, docs/image-steps.md): their lint, and where they run.

`command_issues` reads the raw step mapping, like the other cross-field checks (the model reports wrong
types); the rest reads the validated step.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from mlbatch.spec.checks import Issue, did_you_mean

if TYPE_CHECKING:
    from mlbatch.spec.models import StepDefaults, StepSpec

# MLBATCH_PARAMS travels inline in the environment, and ECS and Batch refuse container overrides over
# 8 KiB in all (with the command, the other variables and their names): params get half of that.
MAX_PARAMS_BYTES = 4096


def command_issues(name: str, step: dict) -> list[Issue]:
    """Both run: and command:, and {params.NAME} placeholders that name no param of the step."""
    from workers import wire  # here: only a spec with a command step needs it at parse time

    if step.get("run") is not None:
        return [Issue(("steps", name, "command"), f"step {name!r} gives both run: and command:",
                      "keep run: to run a worker, or command: (with image:) to run your own image, not both")]
    command, params = step.get("command"), step.get("params") or {}
    if not isinstance(command, list) or not isinstance(params, dict):
        return []
    issues = _params_size_issues(name, params)
    for index, arg in enumerate(command):
        if not isinstance(arg, str):
            continue
        for placeholder in wire.placeholders([arg]):
            param = placeholder.partition("params.")[2]
            if param and param not in params:
                hint = did_you_mean(param, [str(key) for key in params], f"the params of step {name!r}")
                issues.append(Issue(("steps", name, "command", index),
                                    f"{{{placeholder}}} names no param of step {name!r}",
                                    hint or f"add {param!r} under params, or fix the name"))
    return issues


def _params_size_issues(name: str, params: dict) -> list[Issue]:
    """Params too large to travel inline as MLBATCH_PARAMS (serialised as wire.image_env does)."""
    import json

    try:
        size = len(json.dumps(params, sort_keys=True).encode())
    except (TypeError, ValueError):
        return []  # not JSON: the model reports it
    if size <= MAX_PARAMS_BYTES:
        return []
    return [Issue(("steps", name, "params"), f"the params of step {name!r} are {size} bytes as JSON, over the "
                  f"{MAX_PARAMS_BYTES} bytes that travel inline in MLBATCH_PARAMS (ECS and AWS Batch refuse "
                  "container overrides over 8 KiB)", "put large values in a file (or an object in S3) and pass "
                  "its URI as a param; or make it an input step's output (needs:)")]


def written_image(step: StepSpec, defaults: StepDefaults) -> str | None:
    """The image the spec writes for a step (its own, else the defaults' when written): None when only
    the built-in default would apply, which a command step without an image does not run in."""
    if step.image is not None:
        return step.image
    return defaults.image if "image" in defaults.model_fields_set else None


def step_backend(step: StepSpec, defaults: StepDefaults, default_backend: str) -> str:
    """The step's backend; a command step that names no backend and no image runs as a local process."""
    if step.backend is not None:
        return step.backend
    if step.command is not None and written_image(step, defaults) is None:
        return "local"
    return default_backend


def command_backend_problems(name: str, step: StepSpec, defaults: StepDefaults, default_backend: str) -> list[Issue]:
    """A command step's image needs a container backend, and a container backend needs an image."""
    from mlbatch.backends.traits import BACKEND_INFO, backend_info

    if step.command is None:
        return []
    backend = step_backend(step, defaults, default_backend)
    containers = ", ".join(info.name for info in BACKEND_INFO.values() if info.in_containers)
    in_containers = backend_info(backend).in_containers
    if step.image is not None and not in_containers:
        return [Issue(("steps", name, "image"), f"an image step needs a container backend (backend: {containers}); "
                      f"step {name!r} runs on backend {backend!r}",
                      f"set backend: to one of {containers}, or remove image: to run the command as a local process")]
    if in_containers and written_image(step, defaults) is None:
        return [Issue(("steps", name, "command"), f"step {name!r} runs a command on backend {backend!r} but names "
                      "no image to run it in", "add image: (your image: its ENTRYPOINT runs with this command), "
                      "or set backend: local to run the command as a local process")]
    return []
