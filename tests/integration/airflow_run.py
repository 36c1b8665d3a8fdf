"""Run batch specs through real Airflow (`airflow dags test`) in a private dags folder."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from mlbatch.cli.scaffold import loader_source


PROJECT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def migrate_db() -> None:
    subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True, text=True)


def write_batch(dags_dir: Path, name: str, spec_text: str) -> None:
    (dags_dir / "specs").mkdir(parents=True, exist_ok=True)
    (dags_dir / "specs" / f"{name}.yaml").write_text(textwrap.dedent(spec_text))
    (dags_dir / f"{name}.py").write_text(loader_source(name))


@dataclass
class DagTestResult:
    returncode: int
    output: str


def airflow(dags_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: int = 600):
    full_env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(dags_dir), **(env or {})}
    return subprocess.run([AIRFLOW, *args], env=full_env, capture_output=True, text=True,
                          timeout=timeout, cwd=PROJECT)


def dags_test(dags_dir: Path, dag_id: str, env: dict[str, str] | None = None) -> DagTestResult:
    proc = airflow(dags_dir, "dags", "test", dag_id, env=env)
    return DagTestResult(proc.returncode, proc.stdout + proc.stderr)


def asset_events(dag_id: str, step: str) -> list[dict]:
    """The extras of the Airflow asset events of a batch step, oldest first (from the metadata DB)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from mlbatch.run.assets import step_asset

    with create_session() as session:
        query = (select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                 .where(AssetModel.name == step_asset(dag_id, step).name).order_by(AssetEvent.id))
        return [dict(event.extra or {}) for event in session.scalars(query)]
