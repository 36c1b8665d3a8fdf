"""docs/benchmarks.md: a fixed header, then one section per run, newest first."""
from __future__ import annotations

from pathlib import Path

HEADER = """# Benchmarks

Reproduce with `make bench` from the project root (it creates `.venv` on first use; about two
minutes on a 2-CPU machine). Each run adds a section at the top of this file: the date, the
machine and one table per benchmark; the raw figures of each run go to `bench/results/`
(git-ignored). The benchmarks run with a private Airflow home, artifact root and local slot
directory, so they neither see nor disturb a running `make up`, `make demo` or `make test`.
Timings are recorded here only: no test asserts on speed.

"""
# Everything below this line is the runs; the header above it may be rewritten freely.
RUNS_MARKER = "<!-- bench runs below, newest first -->\n"


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def machine_lines(machine: dict) -> list[str]:
    memory = f"{machine['memory_gib']} GiB RAM" if machine["memory_gib"] is not None else "RAM unknown"
    lines = [
        f"Machine: {machine['nproc']} CPUs ({machine['cpu_model']}), {memory}, {machine['os']}; "
        f"Python {machine['python']}, Airflow {machine['airflow']}.",
    ]
    load = machine.get("load_average")
    if load is not None:
        verdict = "the machine was otherwise idle" if load < 0.5 else (
            "other work shared the CPUs: the timings are slower and noisier than on an idle machine")
        lines.append(f"1-minute load average when the run started: {load} ({verdict}).")
    if machine["gpus"]:
        lines.append(f"GPU: {', '.join(machine['gpus'])} present, not measured yet (no GPU benchmark exists).")
    else:
        lines.append("GPU: not measured yet (no GPU machine was available for this run).")
    return lines


def section(title: str, machine: dict, benchmarks: list[tuple[str, str, str]], footer: str) -> str:
    """`benchmarks`: (name, what it measures, markdown table) in run order."""
    parts = [f"## {title}\n", "\n".join(machine_lines(machine)) + "\n"]
    for name, measures, table in benchmarks:
        parts.append(f"### {name}\n\n{measures}\n\n{table}")
    parts.append(footer + "\n")
    return "\n".join(parts)


def prepend_run(path: Path, new_section: str) -> None:
    """Rewrite `path` as header + this run + every earlier run."""
    earlier = ""
    if path.exists():
        text = path.read_text(encoding="utf-8")
        if RUNS_MARKER in text:
            earlier = text.split(RUNS_MARKER, 1)[1].lstrip("\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    body = new_section.rstrip("\n") + "\n"
    if earlier:
        body += "\n" + earlier
    path.write_text(HEADER + RUNS_MARKER + "\n" + body, encoding="utf-8")
