"""The parse benchmark's inputs and probe: generated specs are valid batches, the probe parses what it says."""
from __future__ import annotations

import json
import runpy
import subprocess
import sys
from collections import Counter

from bench.many_specs import write_batches, write_plain_dags
from mlbatch.spec.lint import lint_paths
from tests.conftest import PROJECT


def test_generated_specs_are_valid_batches_of_every_shape(tmp_path):
    loaders = write_batches(tmp_path, 45)
    assert [p for p in lint_paths([tmp_path / "specs"], cpu_count=2) if p.severity == "error"] == []
    dags = [runpy.run_path(str(loader))["dag"] for loader in loaders]
    assert len({dag.dag_id for dag in dags}) == 45
    assert sum(dag.dag_id.startswith("team") for dag in dags) == 15  # every third sets its own dag_id
    assert Counter(len(dag.tasks) for dag in dags).keys() >= {4, 5}
    scoring = [dag for dag in dags if "scoring" in dag.dag_id]
    assert scoring and all(type(dag.timetable).__name__ == "AssetOrTimeSchedule" for dag in scoring)
    again = tmp_path / "again"
    write_batches(again, 45)
    assert (again / "specs" / "gen_0044_embedding.yaml").read_text() == (
        tmp_path / "specs" / "gen_0044_embedding.yaml").read_text()  # seeded: the same folder every run


def test_the_probe_parses_each_loader_in_a_forked_process_with_and_without_bytecode(tmp_path):
    plain = write_plain_dags(tmp_path, 1)[0]
    loaders = [str(PROJECT / "dags" / "churn_training.py"), str(plain)]
    for bytecode in (True, False):
        request = json.dumps({"loaders": loaders, "repeats": 2, "bytecode": bytecode})
        done = subprocess.run([sys.executable, "-m", "bench.parse_probe"], input=request, cwd=PROJECT,
                              capture_output=True, text=True, timeout=300, check=True)
        runs = json.loads(done.stdout.strip().splitlines()[-1])
        assert [(r["dag_id"], r["tasks"]) for r in runs[loaders[0]]] == [("churn_training", 5)] * 2
        assert [(r["dag_id"], r["tasks"]) for r in runs[loaders[1]]] == [("plain_000", 4)] * 2
        assert all(r["seconds"] > 0 for rs in runs.values() for r in rs)
