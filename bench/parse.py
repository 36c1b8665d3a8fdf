"""DAG parse time of every loader in dags/: cold (a fresh interpreter) and warm (re-parses).

Cold is what a new parsing process pays: interpreter start, `import airflow.sdk`, then
the loader itself (mlbatch import, YAML read and validation, DAG build). Warm is what the
dag-processor pays on each re-parse of a file once Airflow and mlbatch are imported.

Every timing happens inside a child interpreter (`python -m bench.parse LOADER REPEATS`),
so the figures never include this process's own imports.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.stats import median, ms

NAME = "DAG parse time"
MEASURES = (
    "Parse time of each dags/ loader: cold = a fresh interpreter that imports airflow.sdk and runs "
    "the loader (median of 5, after one untimed run that warms the file cache); "
    "warm = re-running the loader in a process that parsed it once (median of 20)."
)
ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
COLD_RUNS = 5
WARM_RUNS = 20


def run() -> dict:
    files = {}
    for loader in sorted(DAGS.glob("*.py")):
        _probe(loader, repeats=0)  # untimed: warms the file cache
        cold = [_probe(loader, repeats=0) for _ in range(COLD_RUNS)]
        warm = _probe(loader, repeats=WARM_RUNS)
        files[loader.name] = {
            "dag_id": warm["dag_id"],
            "tasks": warm["tasks"],
            "cold_process_s": median([c["process_s"] for c in cold]),
            "cold_import_sdk_s": median([c["import_sdk_s"] for c in cold]),
            "cold_loader_s": median([c["first_parse_s"] for c in cold]),
            "warm_reparse_s": median(warm["reparse_s"]),
            "cold_runs": COLD_RUNS,
            "warm_runs": WARM_RUNS,
        }
    return {"files": files}


def table(result: dict) -> tuple[list[str], list[list[object]]]:
    headers = [
        "DAG file", "tasks", "cold: whole process (ms)", "cold: import airflow.sdk (ms)",
        "cold: loader (ms)", "warm: re-parse (ms)",
    ]
    rows = [
        [name, f["tasks"], ms(f["cold_process_s"]), ms(f["cold_import_sdk_s"]), ms(f["cold_loader_s"]),
         ms(f["warm_reparse_s"])]
        for name, f in result["files"].items()
    ]
    return headers, rows


def _probe(loader: Path, repeats: int) -> dict:
    """Parse `loader` in a fresh interpreter; its own timings plus the wall time of the whole process."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench.parse", str(loader), str(repeats)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"parsing {loader} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = elapsed
    return result


def _child(loader: str, repeats: int) -> dict:
    """Runs in the child interpreter: import airflow.sdk, parse once, then re-parse `repeats` times."""
    import runpy

    began = time.perf_counter()
    import airflow.sdk  # noqa: F401  (timed: what every parse process pays first)

    imported = time.perf_counter()
    namespace = runpy.run_path(loader)
    parsed = time.perf_counter()
    reparse = []
    for _ in range(repeats):
        start = time.perf_counter()
        runpy.run_path(loader)
        reparse.append(time.perf_counter() - start)
    dag = namespace.get("dag")
    if dag is None:
        raise RuntimeError(f"{loader} defines no 'dag'")
    return {
        "dag_id": dag.dag_id,
        "tasks": len(dag.tasks),
        "import_sdk_s": imported - began,
        "first_parse_s": parsed - imported,
        "reparse_s": reparse,
    }


if __name__ == "__main__":
    # Airflow may log to stdout while it loads; the result is the last line.
    print(json.dumps(_child(sys.argv[1], int(sys.argv[2]))), flush=True)
