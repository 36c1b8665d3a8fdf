"""How a container ended, in mlbatch's failure classes; and what a start error means to the user.

Pure: takes the `State` mapping of `docker inspect` (or an exception text), returns a class and a
reason. The exit-code rules are the shared ones (mlbatch.backends.failures.classify_exit); only
what Docker adds is decided here: the kernel's OOM kill at the cgroup limit, and start errors.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from mlbatch.backends.failures import FailureClass, classify_exit, format_mib

BUILD_FIX = ("build it on that host: make images (or docker build -f Dockerfile.worker -t IMAGE .), or pull it "
             "from your registry: docker pull IMAGE, or [docker] pull = true")
GPU_FIX = ("run GPU steps on a Docker host with NVIDIA GPUs and the NVIDIA Container Toolkit "
           "(DOCKER_HOST or [docker] host), or use backend: batch with queue: gpu")


def classify_state(
    state: Mapping[str, Any],
    *,
    killed_for: str | None,
    memory_mib: int,
    timeout_s: float | None,
    stderr_tail: Sequence[str] = (),
) -> tuple[FailureClass | None, str]:
    """Class and reason for a container's final State; (None, "") when it succeeded.

    killed_for is what we stopped it for ("timeout" or "cancel"), which wins over its exit status,
    except that an exit 0 means it finished before the stop landed.
    """
    exit_code = state.get("ExitCode")
    if exit_code == 0:
        return None, ""
    if killed_for in ("timeout", "cancel"):
        return classify_exit(exit_code, None, timed_out=killed_for == "timeout", cancelled=killed_for == "cancel",
                             timeout_s=timeout_s)
    if state.get("OOMKilled"):
        # the cgroup's hard limit: the kernel killed the worker when it reached its budget (no watchdog)
        return FailureClass.oom, (f"killed by the kernel at its {format_mib(memory_mib)} memory limit "
                                  f"(exit {exit_code}): peak reached the budget")
    if exit_code is None or exit_code < 0:
        error = str(state.get("Error") or "").strip()
        return FailureClass.infrastructure, "the container ended without an exit status" + (
            f": {error}" if error else "")
    return classify_exit(exit_code, None, memory_mib=memory_mib, stderr_tail=stderr_tail)


def start_failure(image: str, error: BaseException) -> str:
    """The reason a container could not be created or started, with the fix."""
    text = _explanation(error)
    if image_missing(error):
        return f"image {image!r} is not on the Docker host (no retry can fix that): {BUILD_FIX.replace('IMAGE', image)}"
    lowered = text.lower()
    if ("device driver" in lowered and "gpu" in lowered) or "nvidia" in lowered:
        return f"the Docker host has no GPU for this step ({text}): {GPU_FIX}"
    return f"the container could not start: {text}"


def image_missing(error: BaseException) -> bool:
    """The image is not on the host (nor pulled): the same on every try, so the failure is final."""
    from docker.errors import ImageNotFound

    return isinstance(error, ImageNotFound) or "No such image" in _explanation(error)


def engine_unreachable(where: str, error: BaseException) -> str:
    return (f"cannot reach the Docker Engine at {where}: {_explanation(error)}; start dockerd, or point "
            "DOCKER_HOST (or [docker] host in mlbatch.toml) at a running engine")


def _explanation(error: BaseException) -> str:
    explanation = getattr(error, "explanation", None)
    return str(explanation or error).strip()
