"""Rebuilding the worker image after a change under workers/: what a developer waits for.

A copy of the checkout's Dockerfile.worker, requirements-worker.txt and workers/ gets one changed file,
then the worker image is built from it through tests/containers/images.py (the path `make images`
and the test fixtures take) under a throwaway tag, with the layer cache of the image already built.
The floor is the same build with nothing changed (every layer cached). Each build's log is timed
line by line, so the table says which steps took the time. The engine's classic builder (no
BuildKit) hashes each COPY's sources to look its layer up, the venv copied from the build stage too.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from bench import machine
from bench.stats import median

NAME = "Worker image rebuild"
MEASURES = (
    "Rebuild of the CPU worker image after one file under workers/ changed (a copy of the checkout, built "
    "through tests/containers/images.py under a throwaway tag, with the layer cache of the built image), "
    "{runs} times, each with a new change, alternating with the floor: the same build with nothing changed "
    "(every layer cached), and after a change built with a new `GIT_SHA` build argument; the goal is at most 60 s. The slowest build steps of the last changed build "
    "(seconds from the step's line to the next line of the log)."
)
RUNS = 3
TAG = "mlbatch-worker:bench-rebuild"
CHANGED = "workers/__init__.py"
SHOWN_STEPS = 5
MEASURES = MEASURES.format(runs=RUNS)


def run() -> dict:
    from mlbatch.cli.compose_images import exclusive
    from tests.containers import images

    client = images.connect()
    if client is None:
        raise RuntimeError(f"no Docker engine: {images.ENABLE_HINT}")
    base, worker = images.ensure_images(client)
    changed_s, new_sha_s, unchanged_s, steps = [], [], [], []
    load_before = machine.load_average()
    with tempfile.TemporaryDirectory(prefix="mlbatch-bench-rebuild-") as tmp:
        checkout = copy_checkout(images.PROJECT, Path(tmp))
        with exclusive():  # the builds other sessions start wait for these, and these for them
            for i in range(RUNS):
                change(checkout, i)
                seconds, steps = timed_build(client, images, base, checkout)
                changed_s.append(seconds)
                unchanged_s.append(timed_build(client, images, base, checkout)[0])
                change(checkout, RUNS + i)  # and a new commit, as the documented build labels it
                new_sha_s.append(timed_build(client, images, base, checkout, git_sha=f"bench{i}{time.time_ns()}")[0])
        client.images.remove(TAG, noprune=False)
    return {"runs": RUNS, "image": worker, "changed_s": changed_s, "unchanged_s": unchanged_s,
            "new_sha_s": new_sha_s, "changed_median_s": median(changed_s), "new_sha_median_s": median(new_sha_s),
            "unchanged_median_s": median(unchanged_s),
            "slowest_steps": slowest_steps(steps, SHOWN_STEPS),
            "load_before": load_before, "load_after": machine.load_average()}


def table(result: dict) -> tuple[list[str], list[list[object]]]:
    headers = ["what was built", "median (s)", "each (s)"]
    each = lambda values: ", ".join(f"{v:.1f}" for v in values)  # noqa: E731
    rows: list[list[object]] = [
        [f"**worker image after a change to `{CHANGED}`**", f"{result['changed_median_s']:.1f}",
         each(result["changed_s"])],
        ["the same with a new `--build-arg GIT_SHA` (the documented build of a new commit)",
         f"{result['new_sha_median_s']:.1f}", each(result["new_sha_s"])],
        ["floor: the same build, nothing changed", f"{result['unchanged_median_s']:.1f}", each(result["unchanged_s"])],
        ["load average before / after", f"{result['load_before']} / {result['load_after']}", ""],
    ]
    rows += [[f"step of the last changed build: `{step}`", f"{seconds:.1f}", ""]
             for step, seconds in result["slowest_steps"]]
    return headers, rows


def copy_checkout(project: Path, into: Path) -> Path:
    """What the worker build reads of the checkout, copied (the wheels are read where they lie)."""
    checkout = into / "checkout"
    checkout.mkdir()
    for name in ("Dockerfile.worker", "requirements-worker.txt"):
        shutil.copy2(project / name, checkout / name)
    shutil.copytree(project / "workers", checkout / "workers",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return checkout


def change(checkout: Path, nonce: int) -> None:
    """One changed file under workers/, as an edit would leave it (a new comment line)."""
    path = checkout / CHANGED
    path.write_text(path.read_text() + f"\n# changed for the rebuild benchmark: {nonce} {time.time_ns()}\n")


def timed_build(client, images, base: str, checkout: Path,
                git_sha: str | None = None) -> tuple[float, list[tuple[float, str]]]:
    """(seconds, the log's lines each with the time it arrived) of one build of `checkout`."""
    lines: list[tuple[float, str]] = []
    args = images.build_args(base) | ({"GIT_SHA": git_sha} if git_sha else {})
    began = time.perf_counter()
    images.build(client, TAG, args,
                 lambda line: lines.append((time.perf_counter() - began, line)), root=checkout)
    return time.perf_counter() - began, lines


def slowest_steps(lines: list[tuple[float, str]], top: int) -> list[tuple[str, float]]:
    """The build steps taking longest: each "Step N/M : ..." line until the next step's line (or the end)."""
    starts = [(at, line.split(" : ", 1)[1].strip()[:70]) for at, line in lines
              if line.startswith("Step ") and " : " in line]
    end = lines[-1][0] if lines else 0.0
    durations = [(step, round(nxt - at, 1)) for (at, step), (nxt, _) in zip(starts, starts[1:] + [(end, "")])]
    return sorted(durations, key=lambda item: -item[1])[:top]
