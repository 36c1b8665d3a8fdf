"""`mlbatch demo DAG...`: run batches end to end through Airflow and summarise them.

Uses `airflow dags test`, which runs a real DAG run against the metadata DB in one command.
Lines worth seeing are shown whole: a failure reason is never cut short.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from mlbatch.cli.airflow_home import airflow_command
from mlbatch.cli.project import find_root

# Lines of the run worth showing live; the full log goes to a file.
_PROGRESS = re.compile(r"step \w+: cache key|=== mlbatch step failed|class: |reason: |cache hit|MLflow: |could not be found")


def run_dag(dag_id: str, log_dir: Path) -> tuple[int, Path]:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{dag_id}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}.log"
    with open(log_path, "w") as log:
        # from the project root: a relative path in a spec (a source) means the same from any folder
        proc = subprocess.Popen([airflow_command(), "dags", "test", dag_id], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1, cwd=find_root())
        for line in proc.stdout:
            log.write(line)
            shown = progress_line(line)
            if shown is not None:
                print("   ", shown, flush=True)
        return proc.wait(), log_path


def progress_line(line: str) -> str | None:
    """The part of a run's log line worth showing live, whole (a failure reason is never cut); None to skip it."""
    return _strip_log_prefix(line) if _PROGRESS.search(line) else None


def _strip_log_prefix(line: str) -> str:
    # "2026-...Z [info     ] message [logger] loc=..." -> "message"
    match = re.match(r"\S+ \[\w+\s*\] (.*?)(?: \[[\w.]+\].*)?$", line.rstrip())
    return match.group(1) if match else line.rstrip()


def main(dag_ids: list[str]) -> int:
    from mlbatch.cli.airflow_home import prepare
    from mlbatch.cli.report import collect, format_report
    from mlbatch.cli.root_workers import let_local_workers_in

    home = Path(os.environ.get("AIRFLOW_HOME", "airflow_home"))
    try:
        prepare(home)
    except RuntimeError as error:
        print(f"mlbatch demo: {error}", file=sys.stderr)
        return 1
    let_local_workers_in()
    failed = 0
    for dag_id in dag_ids:
        print(f"\n>>> {dag_id}: running every step through Airflow (airflow dags test) ...", flush=True)
        started = time.monotonic()
        code, log_path = run_dag(dag_id, home / "demo-logs")
        print(f"    finished in {time.monotonic() - started:.0f} s (exit {code}); full log: {log_path}\n")
        failed += code != 0
        try:
            print(format_report(collect(dag_id)))
        except LookupError:
            print(f"    no run of {dag_id!r} was recorded: Airflow did not find or could not load the batch "
                  f"(see the log above). Check it with `mlbatch lint`; `mlbatch airflow dags list` "
                  f"lists the batches Airflow finds, `mlbatch airflow dags list-import-errors` what it could not load.")
    print(f"\nRun logs: {home / 'demo-logs'}   Artifacts: {os.environ.get('MLBATCH_ARTIFACTS', 'artifacts/')}")
    print("A second run reuses every cached step; MLBATCH_CACHE=refresh recomputes them.")
    return 1 if failed else 0
