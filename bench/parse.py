"""DAG parse time of mlbatch loaders in a folder of many specs, as Airflow's dag-processor pays it.

One folder: the three example batches, 500 generated specs (bench/many_specs.py) and 20 plain
Airflow DAGs of four EmptyOperators as the reference. Two measures of the same files:

- loader: the loader's own time in a process forked from one that holds what the dag-processor
  holds (bench/parse_probe.py): the mlbatch import, reading and validating the spec and its
  siblings, building the DAG. With the project's bytecode compiled, and again without any
  (each parse then compiles mlbatch's modules).
- dag-processor: Airflow's `dag-processor` itself over the folder, its own recorded parse time
  per file (bench/dag_processor.py): the loader plus forking, serializing the DAG and handing
  it to the manager.
"""
from __future__ import annotations

import compileall
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import dag_processor
from bench.many_specs import write_batches, write_plain_dags
from bench.stats import median, ms, p95

NAME = "DAG parse time"
GENERATED = 500
PLAIN = 20
EXAMPLE_REPEATS = 10
ROOT = Path(__file__).resolve().parents[1]
MEASURES = (
    f"One DAG folder holding the {len(list((ROOT / 'dags').glob('*.py')))} example loaders, {GENERATED} generated "
    f"specs with their loaders (training, scoring after a training batch, embedding; every third sets its own "
    f"dag_id) and {PLAIN} plain Airflow DAGs of four EmptyOperators. Loader: its own time in a process forked "
    "from one holding what Airflow's dag-processor holds (its imports, gc frozen), as the dag-processor forks "
    f"one per file: each example {EXAMPLE_REPEATS} times, every other file once; with the project's bytecode "
    "compiled, and without bytecode (each parse compiles mlbatch again). Dag-processor: `airflow dag-processor "
    f"--num-runs {dag_processor.PASSES}` over the same folder (2 parsing processes, SQLite), each file's "
    "`last_parse_duration` of the last pass: fork, loader, serialization and hand-over to the manager."
)


def run() -> dict:
    from mlbatch.cli.airflow_home import airflow_command

    for folder in ("plugins", "workers"):  # what pip install or a first import leaves on a real deployment
        compileall.compile_dir(ROOT / folder, quiet=1)
    with tempfile.TemporaryDirectory(prefix="mlbatch-parse-") as tmp:
        dags = Path(tmp) / "dags"
        groups = {"examples": _copy_examples(dags), "generated": write_batches(dags, GENERATED),
                  "plain": write_plain_dags(dags, PLAIN)}
        repeats = {"examples": EXAMPLE_REPEATS, "generated": 1, "plain": 1}
        loader = {bytecode: {name: _probe(files, repeats[name], bytecode) for name, files in groups.items()}
                  for bytecode in (True, False)}
        processor, wall = dag_processor.parse_durations(dags, Path(tmp) / "home", airflow_command())
    files = {name: [path.name for path in paths] for name, paths in groups.items()}
    missing = [name for names in files.values() for name in names if name not in processor]
    if missing:
        raise RuntimeError(f"the dag-processor recorded no parse time for {len(missing)} files, e.g. {missing[:3]}")
    return {"files": files, "loader_s": loader[True], "loader_no_bytecode_s": loader[False],
            "dag_processor_s": processor, "dag_processor_wall_s": wall, "passes": dag_processor.PASSES}


def table(result: dict) -> tuple[list[str], list[list[object]]]:
    headers = ["DAG files", "files", "loader, median / p95 / max (ms)", "loader without bytecode, median (ms)",
               "dag-processor's own, median / p95 / max (ms)"]
    rows = []
    for group, names in result["files"].items():
        label = {"generated": f"generated specs (among {len(names)})",
                 "plain": "plain Airflow DAG, 4 EmptyOperators (reference)"}.get(group)
        chunks = [[name] for name in names] if group == "examples" else [names]
        for chunk in chunks:
            loader = [s for name in chunk for s in result["loader_s"][group][name]]
            bare = [s for name in chunk for s in result["loader_no_bytecode_s"][group][name]]
            processor = [result["dag_processor_s"][name] for name in chunk]
            rows.append([label or f"{chunk[0]} (example)", len(chunk), _spread(loader), ms(median(bare)),
                         _spread(processor)])
    every = [name for names in result["files"].values() for name in names]
    loader_total = sum(median(result["loader_s"][g][n]) for g, names in result["files"].items() for n in names)
    bare_total = sum(median(result["loader_no_bytecode_s"][g][n]) for g, names in result["files"].items() for n in names)
    rows.append([f"the whole folder, one pass: sum of parse times (s); dag-processor wall for {result['passes']} "
                 f"passes {result['dag_processor_wall_s']:.0f} s", len(every), f"{loader_total:.1f}",
                 f"{bare_total:.1f}", f"{sum(result['dag_processor_s'][n] for n in every):.1f}"])
    return headers, rows


def _spread(seconds: list[float]) -> str:
    return f"{ms(median(seconds))} / {ms(p95(seconds))} / {ms(max(seconds))}"


def _copy_examples(dags: Path) -> list[Path]:
    (dags / "specs").mkdir(parents=True)
    for spec in sorted((ROOT / "dags" / "specs").glob("*.y*ml")):
        shutil.copy(spec, dags / "specs" / spec.name)
    loaders = []
    for loader in sorted((ROOT / "dags").glob("*.py")):
        shutil.copy(loader, dags / loader.name)
        loaders.append(dags / loader.name)
    return loaders


def _probe(loaders: list[Path], repeats: int, bytecode: bool) -> dict[str, list[float]]:
    """{file name: seconds of each parse} from bench.parse_probe in a fresh interpreter."""
    request = {"loaders": [str(p) for p in loaders], "repeats": repeats, "bytecode": bytecode}
    done = subprocess.run([sys.executable, "-m", "bench.parse_probe"], input=json.dumps(request), cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench.parse_probe failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    # Airflow may log to stdout while it loads; the result is the last line.
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    return {Path(loader).name: [run["seconds"] for run in results] for loader, results in runs.items()}
