"""The docker backend's cost per no-op step against its floor, a bare `docker run` of the same image.

One run, interleaved round by round so drift in the machine hits every side alike:
- floor: `docker run --rm --network none --entrypoint true IMAGE`, through the docker CLI and
  through the Docker SDK's own `containers.run()` (create, start, wait, logs, remove);
- the same no-op step (check.noop) as a bare `docker run --rm` from the CLI with the backend's
  isolation flags (user, cap-drop ALL, no-new-privileges, read-only root, tmpfs, pids, limits,
  network none, the artifact mounts): what the container itself costs with no backend around it;
- the no-op step through DockerBackend.run (`backend: docker`);
- the no-op step through LocalBackend.run, for reference.
Then one more backend run with every Engine API request timed, to show where its time goes.
"""
from __future__ import annotations

import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from bench import machine
from bench.overhead import _through_backend as _through_local
from bench.overhead import noop_request
from bench.stats import median, ms, p90

NAME = "Docker backend overhead"
MEASURES = (
    "Wall time per no-op step (check.noop, 1 vCPU, 512 MiB, network none), {runs} rounds after one untimed round, "
    "each round running every side once in turn: the floor `docker run --rm --network none --entrypoint true "
    "IMAGE` (docker CLI, and the Docker SDK's `containers.run`), the same no-op step as a bare `docker run --rm` "
    "with the backend's isolation flags, the step through DockerBackend.run and through LocalBackend.run. "
    "Median, p90 and min-max; the load average before and after. Last rows: one more DockerBackend run with "
    "each Engine API request timed (until its response headers; streams stay open after)."
)
RUNS = 15
_COLLECTION_CALLS = ("create", "json", "prune", "load", "search", "get")
SIDES = ("cli_true", "sdk_true", "cli_noop", "docker_backend", "local_backend")
MEASURES = MEASURES.format(runs=RUNS)


def run() -> dict:
    from tests.containers import images

    client = images.connect()
    if client is None:
        raise RuntimeError(f"no Docker engine: {images.ENABLE_HINT}")
    worker = images.ensure_images(client)[1]
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    load_before = machine.load_average()
    with tempfile.TemporaryDirectory(prefix="mlbatch-bench-dockeroh-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)
        sides = _sides(client, worker, folder)
        for round_ in range(RUNS + 1):
            for side in SIDES:
                elapsed = sides[side](round_)
                if round_:  # the first round is untimed: first start of each side
                    times[side].append(elapsed)
        profile = profile_backend(worker, folder)
    result: dict[str, Any] = {"runs": RUNS, "image": worker, "load_before": load_before,
                              "load_after": machine.load_average(), "times_s": times, "profile": profile}
    for side, values in times.items():
        result[side] = summary(values)
    result["backend_over_cli_true"] = result["docker_backend"]["median_s"] / result["cli_true"]["median_s"]
    result["backend_over_cli_noop"] = result["docker_backend"]["median_s"] / result["cli_noop"]["median_s"]
    return result


def summary(values: list[float]) -> dict[str, float]:
    return {"median_s": median(values), "p90_s": p90(values), "min_s": min(values), "max_s": max(values)}


def table(result: dict) -> tuple[list[str], list[list[object]]]:
    headers = ["what ran", "median (ms)", "p90 (ms)", "min-max (ms)"]
    labels = {
        "cli_true": "floor: `docker run --rm --network none --entrypoint true IMAGE` (CLI)",
        "sdk_true": "floor: the same through the Docker SDK's `containers.run`",
        "cli_noop": "no-op step as a bare `docker run --rm`, the backend's isolation flags (CLI)",
        "docker_backend": "**no-op step through DockerBackend.run**",
        "local_backend": "no-op step through LocalBackend.run (reference)",
    }
    rows: list[list[object]] = []
    for side in SIDES:
        s = result[side]
        rows.append([labels[side], ms(s["median_s"]), ms(s["p90_s"]), f"{ms(s['min_s'])}-{ms(s['max_s'])}"])
    rows.append(["DockerBackend / floor (CLI `true`), medians", f"{result['backend_over_cli_true']:.2f}x", "", ""])
    rows.append(["DockerBackend / bare `docker run` of the same step, medians",
                 f"{result['backend_over_cli_noop']:.2f}x", "", ""])
    rows.append(["load average before / after", f"{result['load_before']} / {result['load_after']}", "", ""])
    for kind, calls, total_s in result["profile"]["by_kind"]:
        rows.append([f"one DockerBackend run: `{kind}` x{calls}", ms(total_s), "", ""])
    rows.append(["one DockerBackend run: wall", ms(result["profile"]["wall_s"]), "", ""])
    return headers, rows


# -- the sides -----------------------------------------------------------------------
def _sides(client: Any, worker: str, folder: Path) -> dict[str, Callable[[int], float]]:
    true_argv = ["docker", "run", "--rm", "--network", "none", "--entrypoint", "true", worker]

    def cli_true(_: int) -> float:
        return _timed_cli(true_argv)

    def sdk_true(_: int) -> float:
        began = time.perf_counter()
        client.containers.run(worker, entrypoint=["true"], network_mode="none", remove=True)
        return time.perf_counter() - began

    def cli_noop(i: int) -> float:
        kwargs = _container_kwargs(_docker_request(worker, folder, f"cli-{i}"))
        for path, spec in kwargs.get("volumes", {}).items():
            if spec["mode"] == "rw":
                Path(path).mkdir(parents=True, exist_ok=True)
                Path(path).chmod(0o777)
        return _timed_cli(["docker", "run", "--rm", *cli_flags(kwargs), worker, *kwargs["command"]])

    def docker_backend(i: int) -> float:
        return _through_docker(_docker_request(worker, folder, f"docker-{i}"))

    def local_backend(i: int) -> float:
        return _through_local(str(folder / f"local-{i}"))

    return {"cli_true": cli_true, "sdk_true": sdk_true, "cli_noop": cli_noop,
            "docker_backend": docker_backend, "local_backend": local_backend}


def _docker_request(worker: str, folder: Path, name: str):
    return noop_request(str(folder / name)).model_copy(
        update={"image": worker, "env": {"MLBATCH_ARTIFACTS": str(folder)}, "identity": f"bench-{name}"})


def _container_kwargs(request) -> dict[str, Any]:
    from mlbatch.backends.docker.config import HostFacts, container_kwargs

    return container_kwargs(request, 0, HostFacts(cpus=2))


def cli_flags(kwargs: dict[str, Any]) -> list[str]:
    """`docker run` flags for the create() keyword arguments the docker backend uses (no name, no labels)."""
    flags = ["--network", kwargs["network_mode"], "--user", kwargs["user"],
             "--cpus", f"{kwargs['nano_cpus'] / 1e9:g}", "--memory", f"{kwargs['mem_limit']}b",
             "--memory-swap", f"{kwargs['memswap_limit']}b", "--pids-limit", str(kwargs["pids_limit"])]
    flags += [flag for cap in kwargs.get("cap_drop", []) for flag in ("--cap-drop", cap)]
    flags += [flag for opt in kwargs.get("security_opt", []) for flag in ("--security-opt", opt)]
    flags += ["--read-only"] if kwargs.get("read_only") else []
    flags += ["--init"] if kwargs.get("init") else []
    flags += [flag for path, opts in kwargs.get("tmpfs", {}).items() for flag in ("--tmpfs", f"{path}:{opts}")]
    flags += [flag for host, spec in kwargs.get("volumes", {}).items()
              for flag in ("-v", f"{host}:{spec['bind']}:{spec['mode']}")]
    flags += [flag for key, value in kwargs.get("environment", {}).items() for flag in ("-e", f"{key}={value}")]
    if "entrypoint" in kwargs:
        flags += ["--entrypoint", kwargs["entrypoint"][0]]
    return flags


def _timed_cli(argv: list[str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])} ... failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def _through_docker(request) -> float:
    from mlbatch.backends.docker import DockerBackend
    from mlbatch.settings import DockerSettings

    began = time.perf_counter()
    result = DockerBackend(log=lambda line: None, settings=DockerSettings()).run(request)
    elapsed = time.perf_counter() - began
    if not result.ok:
        raise RuntimeError("no-op step failed through DockerBackend:\n" + result.failure_report())
    return elapsed


# -- where a backend run's time goes -------------------------------------------------------
def profile_backend(worker: str, folder: Path) -> dict:
    """One DockerBackend run with every Engine API request recorded: (kind, seconds to its response headers)."""
    from docker.api.client import APIClient

    calls: list[tuple[str, float]] = []
    original = APIClient.send

    def send(self, prepared, **kwargs):
        began = time.perf_counter()
        try:
            return original(self, prepared, **kwargs)
        finally:
            calls.append((api_kind(prepared.method, prepared.path_url), time.perf_counter() - began))

    APIClient.send = send
    try:
        wall = _through_docker(_docker_request(worker, folder, "profiled"))
    finally:
        APIClient.send = original
    return {"wall_s": wall, "calls": calls, "by_kind": by_kind(calls)}


def api_kind(method: str, path_url: str) -> str:
    """'POST /containers/{id}/start' from 'POST /v1.41/containers/3f2a.../start?x=1': the call, not its ids."""
    path = path_url.split("?", 1)[0]
    parts = [part for part in path.split("/") if part]
    if parts and parts[0].startswith("v1."):
        parts = parts[1:]
    if len(parts) >= 2 and parts[0] in ("containers", "images", "exec") and parts[1] not in _COLLECTION_CALLS:
        parts[1] = "{id}"
    return f"{method} /{'/'.join(parts)}"


def by_kind(calls: list[tuple[str, float]]) -> list[tuple[str, int, float]]:
    """(kind, count, total seconds), slowest kind first."""
    totals: dict[str, list[float]] = defaultdict(list)
    for kind, seconds in calls:
        totals[kind].append(seconds)
    rows = [(kind, len(values), sum(values)) for kind, values in totals.items()]
    return sorted(rows, key=lambda row: -row[2])
