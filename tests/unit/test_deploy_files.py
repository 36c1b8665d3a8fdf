"""docker-compose.yaml and Dockerfile.worker, checked statically (no Docker engine here)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[2]


def test_compose_has_the_airflow_stack():
    compose = yaml.safe_load((PROJECT / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "airflow-init", "api-server", "scheduler", "dag-processor", "triggerer"} <= set(services)
    assert services["api-server"]["ports"] == ["8080:8080"]
    for name in ("api-server", "scheduler", "dag-processor", "triggerer"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
        assert "./dags:/opt/airflow/dags" in services[name]["volumes"]
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert "pools set mlbatch_local" in services["airflow-init"]["command"]


def test_compose_pins_the_airflow_version_of_requirements():
    compose = (PROJECT / "docker-compose.yaml").read_text()
    pinned = next(line for line in (PROJECT / "requirements.txt").read_text().splitlines()
                  if line.startswith("apache-airflow=="))
    assert f"apache/airflow:{pinned.split('==')[1]}" in compose


def test_worker_image_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    proc = subprocess.run([hadolint, str(PROJECT / "Dockerfile.worker")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_worker_image_installs_only_worker_requirements():
    dockerfile = (PROJECT / "Dockerfile.worker").read_text()
    assert "requirements-worker.txt" in dockerfile
    requirements = [line for line in (PROJECT / "requirements-worker.txt").read_text().splitlines()
                    if line and not line.startswith("#")]
    assert requirements and not any("airflow" in line for line in requirements)
    assert 'ENTRYPOINT ["python", "-m", "workers"]' in dockerfile
