"""`mlbatch new NAME`: a new batch = a spec and its one-line Airflow loader."""
from __future__ import annotations

import re
from pathlib import Path

LOADER = '''"""Airflow DAG loader for the {name} batch (dags/specs/{spec}).

One tiny loader per spec: a broken spec then shows as an import error of this file
alone, and every other batch keeps loading. `mlbatch new` writes these.
"""
from mlbatch.run.factory import build_dag

dag = build_dag(__file__, "specs/{spec}")
'''

SPEC = '''# {name}: edit the steps, then `mlbatch lint` and `mlbatch demo {name}`.
description: Describe what this batch produces
schedule: null                 # cron ("0 3 * * *"), a preset (@daily), null for manual runs,
                               # or {{after: [other_batch.step]}}: when that step publishes a new output
owner: ml-platform
tags: []
alerts:
  slack: slack_ml_alerts       # Airflow connection of your Slack webhook (docker compose: AIRFLOW_CONN_SLACK_ML_ALERTS)
defaults:
  backend: local
  resources: {{vcpu: 1, memory: 2Gi}}
  retries: 2
  retry_delay: 1m
  timeout: 30m
steps:
  features:
    run: features.synthetic
    params: {{rows: 50000, seed: 7}}
  train:
    run: train.gbdt
    needs: [features]
    shards: 3
  ensemble:
    run: ensemble.average
    needs: [train]
  score:
    run: predict.batch
    needs: [ensemble, features]
    shards: {{per: 25000, of: features.rows, max: 10}}
'''

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def loader_source(name: str, spec_file: str | None = None) -> str:
    return LOADER.format(name=name, spec=spec_file or f"{name}.yaml")


def create_batch(dags_dir: Path, name: str, spec_text: str | None = None) -> list[Path]:
    """Write specs/NAME.yaml (`spec_text`, else the synthetic example) and NAME.py under dags_dir;
    never overwrite."""
    if not _NAME.match(name):
        raise ValueError(f"batch name {name!r}: use letters, digits and underscores, starting with a letter")
    spec_path, loader_path = dags_dir / "specs" / f"{name}.yaml", dags_dir / f"{name}.py"
    existing = [p for p in (spec_path, loader_path) if p.exists()]
    if existing:
        raise FileExistsError(f"{existing[0]} already exists; pick another name or edit it")
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(spec_text if spec_text is not None else SPEC.format(name=name))
    loader_path.write_text(loader_source(name))
    return [spec_path, loader_path]


def create_loader(dags_dir: Path, name: str) -> list[Path]:
    """Write NAME.py for an existing specs/NAME.yaml (or .yml) under dags_dir; never overwrite."""
    if not name or Path(name).name != name:
        raise ValueError(f"batch name {name!r}: the spec's file name without .yaml, no folders")
    specs = [dags_dir / "specs" / f"{name}{suffix}" for suffix in (".yaml", ".yml")]
    spec_path = next((p for p in specs if p.is_file()), None)
    if spec_path is None:
        raise ValueError(f"no spec {specs[0]} to write a loader for; "
                         f"`mlbatch new {name}` writes a new spec and its loader")
    loader_path = dags_dir / f"{name}.py"
    if loader_path.exists():
        raise FileExistsError(f"{loader_path} already exists; it must call "
                              f'build_dag(__file__, "specs/{spec_path.name}")')
    loader_path.write_text(loader_source(name, spec_path.name))
    return [loader_path]
