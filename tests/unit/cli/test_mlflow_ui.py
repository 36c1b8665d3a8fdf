"""`mlbatch up` serves MLflow's UI for the project's store, and the run pages link to where it is served."""
from __future__ import annotations

import os
import signal
import time
import urllib.request

import pytest

from mlbatch.cli import mlflow_ui
from mlbatch.cli.postgres import free_port
from mlbatch.tracking.steps import prepare_store
from mlbatch.tracking.store import run_page


@pytest.fixture
def tracked(tmp_path, monkeypatch):
    monkeypatch.setenv("MLBATCH_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("MLBATCH_TRACKING_MLFLOW", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(mlflow_ui.UI_ENV, raising=False)
    return prepare_store(str(tmp_path / "artifacts"))


def answers(url: str, within_s: float = 120) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(1)
    return False


@pytest.mark.slow  # a real MLflow server: up to two minutes to answer on a busy machine
@pytest.mark.skipif(not mlflow_ui.ui_installed(), reason=f"MLflow's UI is not installed: {mlflow_ui.INSTALL}")
def test_the_ui_serves_the_projects_store_and_run_pages_point_at_it(tracked, tmp_path, monkeypatch):
    port, env = free_port(), {**os.environ}
    with open(tmp_path / "mlflow_ui.log", "w") as log:
        server = mlflow_ui.start(port, env, log)
    assert server is not None
    try:
        assert answers(f"http://127.0.0.1:{port}/"), (tmp_path / "mlflow_ui.log").read_text()[-2000:]
        assert env[mlflow_ui.UI_ENV] == f"http://127.0.0.1:{port}"
        monkeypatch.setenv(mlflow_ui.UI_ENV, env[mlflow_ui.UI_ENV])  # what the Airflow processes get
        assert run_page(tracked, "1", "abc") == f"http://127.0.0.1:{port}/#/experiments/1/runs/abc"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_nothing_is_served_for_a_tracking_server_or_with_tracking_off(tracked, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert mlflow_ui.store_to_serve() is None
    assert run_page("http://mlflow.internal:5000", "1", "r") == "http://mlflow.internal:5000/#/experiments/1/runs/r"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("MLBATCH_TRACKING_MLFLOW", "false")
    assert mlflow_ui.store_to_serve() is None


def test_without_the_ui_package_up_says_how_to_get_it(tracked, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(mlflow_ui, "ui_installed", lambda: False)
    env = {}
    assert mlflow_ui.start(free_port(), env, open(os.devnull, "w")) is None and mlflow_ui.UI_ENV not in env
    assert "MLflow UI: not installed (the project has the skinny client); `pip install mlflow==3.17.2` adds it" \
        in capsys.readouterr().out
