"""Parse loaders the way Airflow's dag-processor does: each in a process forked from one that holds Airflow.

`python -m bench.parse_probe` reads a JSON request on stdin ({"loaders": [...], "repeats": N,
"bytecode": true}) and prints one JSON line: per loader, the seconds each parse took.

Why fork: Airflow 3's dag-processor imports its own modules (the SDK, serialization, the
providers' operators), freezes the garbage collector and then forks one process per file
to parse (airflow.dag_processing.manager / processor). Whatever a loader imports beyond that
is paid again by every parse, every 30 s. Doing the same here times exactly that share: the
mlbatch import, reading and validating the spec, building the DAG.

bytecode=false times a deployment where the dag-processor can neither find nor write bytecode
for the project's modules (PYTHONDONTWRITEBYTECODE with a read-only checkout): each parse
compiles them again. The child then looks for bytecode in an empty folder.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import sys
import tempfile
import time


def parse_in_fork(loader: str, bytecode: bool, empty_prefix: str) -> dict:
    """Fork, parse `loader` in the child, return the child's own timing."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the same steps as a dag-processor parse process, then exit at once
        os.close(read_end)
        result = _parse(loader, bytecode, empty_prefix)
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not payload:
        raise RuntimeError(f"parsing {loader} failed in the forked process (wait status {status})")
    return json.loads(payload)


def _parse(loader: str, bytecode: bool, empty_prefix: str) -> dict:
    import runpy

    if not bytecode:
        sys.pycache_prefix, sys.dont_write_bytecode = empty_prefix, True
    try:
        began = time.perf_counter()
        namespace = runpy.run_path(loader)
        elapsed = time.perf_counter() - began
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
        return {"error": f"{type(exc).__name__}: {exc}"}
    dag = namespace.get("dag")
    return {"seconds": elapsed, "dag_id": getattr(dag, "dag_id", None), "tasks": len(getattr(dag, "tasks", ()))}


def main() -> None:
    request = json.loads(sys.stdin.read())
    # What the dag-processor holds before it forks a parse process (then its gc.freeze(), below).
    import airflow.dag_processing.manager  # noqa: F401
    import airflow.dag_processing.processor  # noqa: F401
    import airflow.sdk  # noqa: F401

    from airflow.utils.file import iter_airflow_imports

    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="mlbatch-no-bytecode-") as empty:
        for loader in request["loaders"]:
            for module in iter_airflow_imports(loader):  # the dag-processor's pre-import of a file's airflow.*
                importlib.import_module(module)
            gc.freeze()
            runs = [parse_in_fork(loader, request["bytecode"], empty) for _ in range(request["repeats"])]
            failed = [run["error"] for run in runs if "error" in run]
            if failed:
                raise RuntimeError(f"{loader}: {failed[0]}")
            results[loader] = runs
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
