"""The worker image: build time cold and warm, its size and what takes the space, and container start overhead.

Builds go through tests/containers/images.py, the same builder `make images` and the test suite use:
the debootstrap base, then Dockerfile.worker with the offline build arguments. A no-op step as a
container (tests/containers/run.py: what the AWS stand-in runs per job) is compared with the same
step through LocalBackend (a capped local process), alternating runs.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.overhead import _through_backend
from bench.stats import median, ms, p90
from tests.containers import images
from tests.containers.run import ContainerJob, run as run_container
from workers.wire import run_command

NAME = "Worker image"
MEASURES = (
    "Build of the CPU worker image from Dockerfile.worker on the debootstrap base (tests/containers/images.py): "
    "cold (no layer cache, every package downloaded again; the base made by debootstrap again) and warm (the "
    "same inputs rebuilt with the layer cache; a second `make test` builds nothing: the tags exist). Image size and its largest Python packages. Container "
    "start overhead: a no-op step (check.noop) as a container of the image (network none, 1 vCPU, 512 MiB, "
    "removed after) vs through LocalBackend as a capped local process, 10 runs each alternating after one untimed "
    "run of each; and the same no-op step through DockerBackend (`backend: docker`: label lookup, create, log "
    "streams, wait, remove), 10 runs."
)
RUNS = 10
COLD_BASE, COLD_WORKER = "mlbatch-base:bench-cold", "mlbatch-worker:bench-cold"
SITE_PACKAGES = "/opt/venv/lib/python3.11/site-packages"


def run() -> dict:
    client = images.connect()
    if client is None:
        raise RuntimeError(f"no Docker engine: {images.ENABLE_HINT}")
    base = images.ensure_base(client)
    worker = images.ensure_worker(client, base)
    result: dict = {"base": base, "worker": worker}
    began = time.perf_counter()
    images.build_base(client, COLD_BASE, lambda line: None)
    result["base_cold_s"] = time.perf_counter() - began
    began = time.perf_counter()
    images.ensure_worker(client, base, nocache=True, tag=COLD_WORKER)
    result["worker_cold_s"] = time.perf_counter() - began
    began = time.perf_counter()
    images.build(client, COLD_WORKER, images.build_args(base), lambda line: None)
    result["worker_warm_s"] = time.perf_counter() - began
    for tag in (COLD_WORKER, COLD_BASE):
        client.images.remove(tag, noprune=False)
    result["size_mb"] = client.images.get(worker).attrs["Size"] / 1e6
    result["largest_packages"] = _largest_packages(client, worker)
    result.update(_start_overhead(client, worker))
    result.update(_docker_backend_overhead(worker))
    return result


def _largest_packages(client, worker: str, top: int = 8) -> list[tuple[str, float]]:
    listing = run_container(client, ContainerJob(
        worker, ["-c", f"du -sk {SITE_PACKAGES}/* | sort -rn | head -n {top}"], entrypoint=["sh"],
        network="none", memory_mib=256))
    rows = [line.split(None, 1) for line in listing.lines if line.strip()]
    return [(Path(path).name, int(kib) / 1024) for kib, path in rows]


def _in_container(client, worker: str, folder: Path, index: int) -> float:
    output = folder / f"container-{index}"
    step = {"worker": "check.noop", "params": {}, "inputs": {}, "output": str(output)}
    job = ContainerJob(worker, run_command(step), network="none", memory_mib=512, vcpu=1,
                       volumes={str(folder): {"bind": str(folder), "mode": "rw"}})
    began = time.perf_counter()
    ended = run_container(client, job)
    elapsed = time.perf_counter() - began
    if ended.exit_code != 0:
        raise RuntimeError("no-op step failed in a container:\n" + "\n".join(ended.lines[-30:]))
    return elapsed


def _start_overhead(client, worker: str) -> dict:
    container_s: list[float] = []
    local_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="mlbatch-bench-containers-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o777)  # the image runs as an unprivileged user
        _in_container(client, worker, folder, -1)  # untimed: first start of each side
        _through_backend(str(folder / "local-first"))
        for i in range(RUNS):
            container_s.append(_in_container(client, worker, folder, i))
            local_s.append(_through_backend(str(folder / f"local-{i}")))
    return {"runs": RUNS, "container_median_s": median(container_s), "container_p90_s": p90(container_s),
            "local_median_s": median(local_s), "local_p90_s": p90(local_s),
            "overhead_median_s": median(container_s) - median(local_s),
            "overhead_p90_s": p90(container_s) - p90(local_s),
            "container_s": container_s, "local_s": local_s}


def _through_docker_backend(worker: str, folder: Path, index: int) -> float:
    """The no-op step through DockerBackend, as a `backend: docker` step runs it (label lookup, log streams)."""
    from bench.overhead import noop_request
    from mlbatch.backends.docker import DockerBackend

    request = noop_request(str(folder / f"docker-{index}")).model_copy(
        update={"image": worker, "env": {"MLBATCH_ARTIFACTS": str(folder)}, "identity": f"bench-{index}"})
    began = time.perf_counter()
    result = DockerBackend(log=lambda line: None).run(request)
    elapsed = time.perf_counter() - began
    if not result.ok:
        raise RuntimeError("no-op step failed through DockerBackend:\n" + result.failure_report())
    return elapsed


def _docker_backend_overhead(worker: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="mlbatch-bench-docker-") as tmp:
        _through_docker_backend(worker, Path(tmp), -1)  # untimed: first start
        backend_s = [_through_docker_backend(worker, Path(tmp), i) for i in range(RUNS)]
    return {"docker_backend_median_s": median(backend_s), "docker_backend_p90_s": p90(backend_s),
            "docker_backend_s": backend_s}


def table(result: dict) -> tuple[list[str], list[list[object]]]:
    headers = ["what", "value"]
    packages = ", ".join(f"{name} {mib:.0f} MiB" for name, mib in result["largest_packages"])
    rows = [
        ["base image (debootstrap bookworm minbase + python3), cold", f"{result['base_cold_s']:.0f} s"],
        ["CPU worker image, cold (no cache)", f"{result['worker_cold_s']:.0f} s"],
        ["CPU worker image, warm (every layer cached)", f"{result['worker_warm_s']:.1f} s"],
        ["CPU worker image size", f"{result['size_mb'] / 1000:.2f} GB"],
        ["largest packages in it", packages],
        ["no-op step as a container, median / p90",
         f"{ms(result['container_median_s'])} / {ms(result['container_p90_s'])} ms"],
        ["no-op step through LocalBackend, median / p90",
         f"{ms(result['local_median_s'])} / {ms(result['local_p90_s'])} ms"],
        ["**container start overhead** (container − local), median / p90",
         f"{ms(result['overhead_median_s'])} / {ms(result['overhead_p90_s'])} ms"],
        ["no-op step through DockerBackend (`backend: docker`), median / p90",
         f"{ms(result['docker_backend_median_s'])} / {ms(result['docker_backend_p90_s'])} ms"],
    ]
    return headers, rows
