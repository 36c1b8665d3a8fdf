"""`python -m workers run --request JSON` runs one shard; `python -m workers list` lists workers.

Exit codes: 0 done, 65 bad input (one line "mlbatch-bad-input: <reason>" on stderr),
75 the machine or a service failed, e.g. disk full (one line "mlbatch-infrastructure: <reason>"),
1 anything else (traceback on stderr). numpy, sklearn and pandas are imported only
when the worker function loads, after the backend has set OMP_NUM_THREADS and friends.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

from workers.errors import BadInput, Transient, disk_full
from workers import wire
from workers.wire import BAD_INPUT_EXIT_CODE, TRANSIENT_EXIT_CODE, bad_input_line, transient_line


def main(argv: list[str] | None = None) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # stream log lines live through pipes
    args = _parser().parse_args(argv)
    if args.command == "list":
        return _list()
    try:
        return _run(args.request)
    except BadInput as exc:
        print(bad_input_line(str(exc)), file=sys.stderr, flush=True)  # the orchestrator reads one line
        return BAD_INPUT_EXIT_CODE
    except Exception as exc:
        traceback.print_exc()
        if (reason := str(exc) if isinstance(exc, Transient) else disk_full(exc)) is not None:
            print(transient_line(reason), file=sys.stderr, flush=True)
            return TRANSIENT_EXIT_CODE
        sys.stderr.flush()
        return 1
    finally:
        if peak_file := os.environ.get(wire.PEAK_FILE):  # the local backend's memory figure
            from workers.peak import write_peak

            write_peak(peak_file)


def _run(request_json: str) -> int:
    from workers.request import StepRequest
    from workers.runner import run

    request = StepRequest.from_json(request_json).with_env()
    where = f"{request.worker} shard {request.shard_index}/{request.shard_count} try {request.try_number}"
    print(f"mlbatch-worker start: {where} -> {request.output}")
    began = time.monotonic()
    manifest = run(request)
    print(f"mlbatch-worker done: {where} in {time.monotonic() - began:.2f}s "
          f"counts={json.dumps(manifest['counts'])} metrics={json.dumps(manifest['metrics'])}")
    return 0


def _list() -> int:
    """Every installed worker (the project's and every worker package's); exit 1 if one cannot load."""
    from workers.registry import WORKERS

    broken = WORKERS.problems()
    usable = {name: WORKERS[name] for name in WORKERS if name not in broken}
    width = max(len(name) for name in usable)
    for name, info in sorted(usable.items()):
        params = ", ".join(info.params.model_fields) or "-"
        by_task = "; ".join(f"{task}: {', '.join(info.reported(task))}" for task in info.task_metrics)
        reported = by_task or ", ".join(info.metrics)
        metrics = f"; metrics ({reported})" if by_task else (f"; metrics: {reported}" if reported else "")
        print(f"{name:<{width}}  {info.summary}  [params: {params}{metrics}]")
    for error in broken.values():
        print(f"error: {error}. Fix: {error.fix}", file=sys.stderr)
    return 1 if broken else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workers", description="mlbatch workers")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one shard of a step")
    run.add_argument("--request", required=True, help="StepRequest as JSON")
    sub.add_parser("list", help="list the installed workers (entry-point group mlbatch.workers)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
