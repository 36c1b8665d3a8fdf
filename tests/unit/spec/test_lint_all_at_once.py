"""One lint run says every error of a spec (schedule, workers, params, needs, columns), and a
list of candidates is cut to the closest few."""
from __future__ import annotations

from pathlib import Path

from mlbatch.spec.lint import lint_file

COLUMNS = ["id", *(f"feature_{i}" for i in range(64)), "target"]
SPEC = """
schedule: "0 3 * * 8"
steps:
  data:
    run: table.load
    params: {{source: {source}, label: targte}}
  gbdt: {{run: train.gbtd, needs: [data], shards: 2}}
  mlp: {{run: train.mlp, needs: [dta], params: {{epoch: 3}}}}
  odd: {{run: zzz.qqq}}
"""


def lint(tmp_path: Path) -> dict[str, str]:
    table = tmp_path / "wide.csv"
    table.write_text(",".join(COLUMNS) + "\n" + ",".join("1" for _ in COLUMNS) + "\n")
    spec = tmp_path / "wide.yaml"
    spec.write_text(SPEC.format(source=table))
    return {p.field: f"{p.message} Fix: {p.fix}" for p in lint_file(spec, cpu_count=64) if p.severity == "error"}


def test_every_kind_of_error_in_one_run(tmp_path):
    found = lint(tmp_path)
    assert set(found) >= {"schedule", "steps.data.params.label", "steps.gbdt.run", "steps.mlp.needs[0]",
                          "steps.mlp.params.epoch", "steps.odd.run"}, found
    assert "did you mean 'target'?" in found["steps.data.params.label"]  # not hidden by the worker typo


def test_long_candidate_lists_are_cut_to_the_closest_few(tmp_path):
    found = lint(tmp_path)
    label = found["steps.data.params.label"]
    assert "(closest of its 66 columns: target, " in label and "(and 61 more)" in label
    assert "feature_40" not in label
    assert found["steps.gbdt.run"] == ("unknown worker 'train.gbtd' Fix: did you mean 'train.gbdt'? "
                                       "(every worker: python -m workers list)")
    odd = found["steps.odd.run"]
    assert odd.startswith("unknown worker 'zzz.qqq' Fix: use one of the closest workers: ")
    assert odd.count(",") == 4 and "more) (every worker: python -m workers list); a worker of your own " in odd


def test_a_budget_below_what_a_worker_needs_to_start_is_a_warning(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("x,y\n1,0\n2,1\n")
    spec = tmp_path / "small.yaml"
    spec.write_text(f"""
defaults: {{resources: {{memory: 300Mi}}}}
steps:
  data: {{run: table.load, params: {{source: {table}, label: y}}, resources: {{memory: 150Mi}}}}
  mlp: {{run: train.mlp, needs: [data], shards: 2}}
  gbdt: {{run: train.gbdt, needs: [data], shards: 2}}
  wait: {{run: check.sleep, resources: {{memory: 32Mi}}}}
""")
    warnings = {p.field: f"{p.message} Fix: {p.fix}" for p in lint_file(spec, cpu_count=64) if p.severity == "warning"}
    assert warnings == {
        "steps.data.resources.memory": "step 'data' gets 150 MiB, below the 210 MiB worker 'table.load' needs just to "
                                       "start (Python and its libraries): every try would fail as oom Fix: set "
                                       "resources.memory to at least 210Mi",
        "defaults.resources.memory": "step 'mlp' gets 300 MiB, below the 390 MiB worker 'train.mlp' needs just to "
                                     "start (Python and its libraries): every try would fail as oom Fix: set "
                                     "resources.memory to at least 390Mi"}
