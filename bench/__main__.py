"""`python -m bench [NAME ...]`: run the benchmarks, print them, record them.

Writes the run at the top of docs/benchmarks.md and its raw figures to
bench/results/<UTC time>.json. Names: parse, overhead, shards, aws_batch, embed, tabular, images, waiting, tracking, worker_start, docker_overhead, image_rebuild, aws_peers (default: all).
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import machine, report

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ("parse", "overhead", "shards", "aws_batch", "embed", "tabular", "images", "waiting", "tracking",
              "worker_start", "docker_overhead", "image_rebuild", "aws_peers")
DOCS = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "bench" / "results"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)
    started = datetime.now(timezone.utc)
    load_before = machine.load_average()
    began = time.perf_counter()
    results: dict[str, dict] = {}
    sections: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="mlbatch-bench-") as private:
        _isolate(Path(private))
        for name in names:
            module = importlib.import_module(f"bench.{name}")  # after _isolate: nothing reads the env early
            print(f"== {module.NAME} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            results[name] = module.run()
            table = report.markdown_table(*module.table(results[name]))
            print(f"\n{module.NAME} ({time.perf_counter() - t0:.0f} s)\n{table}", flush=True)
            sections.append((module.NAME, module.MEASURES, table))
    total_s = time.perf_counter() - began

    host = machine.describe()
    host["load_average"] = load_before
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    raw = RESULTS / f"{stamp}.json"
    RESULTS.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(
        {"started_at": started.isoformat(timespec="seconds"), "duration_s": round(total_s, 1),
         "machine": host, "results": results}, indent=2) + "\n", encoding="utf-8")
    if not args.no_docs:
        footer = f"The whole run took {total_s:.0f} s; raw figures: `bench/results/{raw.name}`."
        title = started.strftime("%Y-%m-%d %H:%M UTC")
        report.prepend_run(DOCS, report.section(title, host, sections, footer))
    print("\n".join(report.machine_lines(host)))
    print(f"raw figures: {raw.relative_to(ROOT)}" + ("" if args.no_docs else f"; report: {DOCS.relative_to(ROOT)}"))
    return 0


def _isolate(private: Path) -> None:
    """A private Airflow home, artifact root, slot directory and spec index for this run and its workers.

    Private slots matter most: sharing the host's slot directory would make the workers
    queue behind (and be timed with) a concurrent `make test` or `make demo`.
    """
    plugins = str(ROOT / "plugins")
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ.update({
        "AIRFLOW_HOME": str(private / "airflow_home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": plugins,
        "MLBATCH_ARTIFACTS": str(private / "artifacts"),
        "MLBATCH_LOCAL_SLOTS_DIR": str(private / "slots"),
        "MLBATCH_SPEC_INDEX_DIR": str(private / "spec-index"),
        # absolute, so child interpreters find mlbatch and workers whatever their cwd
        "PYTHONPATH": os.pathsep.join([plugins, str(ROOT), *inherited]),
    })
    for path in (str(ROOT), plugins):  # and this process, should it run without PYTHONPATH
        if path not in sys.path:
            sys.path.insert(0, path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description="mlbatch benchmarks")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--no-docs", action="store_true",
                        help="print and save raw JSON only; leave docs/benchmarks.md alone")
    return parser


if __name__ == "__main__":
    sys.exit(main())
