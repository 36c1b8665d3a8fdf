"""`mlbatch up` serves MLflow's UI for the project's store, and the run pages link to where it is served."""
from __future__ import annotations

import fcntl
import json
import os
import signal
import sys
import threading
import time
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest

from mlbatch.cli import mlflow_ui
from mlbatch.cli import tool_venv as tool_venv_module
from mlbatch.cli.tool_venv import ToolVenvError, tool_venv
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


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def ui_venv_made():
    """The UI's own venv, made once (minutes on a first run) and reused after; no index: skipped, failed in CI."""
    requirement = f"mlflow=={mlflow_ui.client_version()}"
    try:
        return tool_venv(mlflow_ui.ui_venv(), requirement)
    except ToolVenvError as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(str(error))
        pytest.skip(f"{error} (no package index?)")


@pytest.mark.slow  # a real MLflow server from its own venv: minutes to build it once, then up to two to answer
def test_the_ui_serves_the_projects_store_and_run_pages_point_at_it(ui_venv_made, tracked, tmp_path, monkeypatch):
    monkeypatch.setattr(mlflow_ui, "ui_installed", lambda: False)  # the project's env has the skinny client only
    port, env = free_port(), {**os.environ}
    with open(tmp_path / "mlflow_ui.log", "w") as log:
        server = mlflow_ui.start(port, env, log)
    assert server is not None
    base = f"http://127.0.0.1:{port}"
    try:
        assert answers(f"{base}/"), (tmp_path / "mlflow_ui.log").read_text()[-2000:]
        with urllib.request.urlopen(f"{base}/", timeout=30) as page:
            assert b"<html" in page.read().lower()  # the web pages, not only the API
        assert server.args[0] == str(ui_venv_made / "bin" / "mlflow")
        run = log_a_run(tracked)
        found = post(f"{base}/ajax-api/2.0/mlflow/runs/search", {"experiment_ids": [run.info.experiment_id]})
        assert [r["info"]["run_id"] for r in found["runs"]] == [run.info.run_id]
        assert env[mlflow_ui.UI_ENV] == base
        monkeypatch.setenv(mlflow_ui.UI_ENV, env[mlflow_ui.UI_ENV])  # what the Airflow processes get
        assert run_page(tracked, run.info.experiment_id, run.info.run_id) == \
            f"{base}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def log_a_run(uri: str):
    """A run logged into the store by MLflow's client, as a model step logs one."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("ui_check"))
    client.log_metric(run.info.run_id, "auc", 0.9)
    client.set_terminated(run.info.run_id)
    return run


def test_nothing_is_served_for_a_tracking_server_or_with_tracking_off(tracked, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert mlflow_ui.store_to_serve() is None
    assert run_page("http://mlflow.internal:5000", "1", "r") == "http://mlflow.internal:5000/#/experiments/1/runs/r"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("MLBATCH_TRACKING_MLFLOW", "false")
    assert mlflow_ui.store_to_serve() is None


def test_port_zero_serves_nothing_and_builds_nothing(tracked, monkeypatch, tmp_path):
    monkeypatch.setattr(mlflow_ui, "ui_command", lambda: pytest.fail("port 0 must not look for an mlflow"))
    env: dict[str, str] = {}
    with open(tmp_path / "mlflow_ui.log", "w") as log:
        assert mlflow_ui.start(0, env, log) is None
    assert mlflow_ui.UI_ENV not in env


def test_the_projects_own_full_mlflow_serves_when_it_is_there(monkeypatch, tmp_path):
    monkeypatch.setattr(mlflow_ui, "ui_installed", lambda: True)
    monkeypatch.setenv(mlflow_ui.VENV_ENV, str(tmp_path / "ui"))
    assert mlflow_ui.ui_command() == str(Path(sys.executable).with_name("mlflow"))
    assert not (tmp_path / "ui").exists()  # no venv made


def test_the_ui_venv_is_one_per_client_version_under_the_cache_folder_or_where_set(monkeypatch, tmp_path):
    monkeypatch.delenv(mlflow_ui.VENV_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    version = metadata.version("mlflow-skinny")
    assert mlflow_ui.client_version() == version
    assert mlflow_ui.ui_venv() == tmp_path / "cache" / "mlbatch" / f"mlflow-ui-{version}"
    monkeypatch.setenv(mlflow_ui.VENV_ENV, str(tmp_path / "elsewhere"))
    assert mlflow_ui.ui_venv() == tmp_path / "elsewhere"


def test_a_made_venv_is_reused_without_installing(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(mlflow_ui, "ui_installed", lambda: False)
    monkeypatch.setenv(mlflow_ui.VENV_ENV, str(tmp_path / "ui"))
    (tmp_path / "ui").mkdir()
    (tmp_path / "ui" / tool_venv_module.MARKER).write_text(f"mlflow=={mlflow_ui.client_version()}\n")
    monkeypatch.setattr(tool_venv_module, "_install", lambda *a: pytest.fail("installed again"))
    assert mlflow_ui.ui_command() == str(tmp_path / "ui" / "bin" / "mlflow")
    assert capsys.readouterr().out == ""


def test_a_half_made_or_other_version_venv_is_made_again(monkeypatch, tmp_path):
    installs = []
    monkeypatch.setattr(tool_venv_module, "_install", lambda venv, req, timeout: installs.append((venv, req)))
    (tmp_path / "ui" / "bin").mkdir(parents=True)
    (tmp_path / "ui" / "bin" / "mlflow").touch()  # an install cut short: no marker
    tool_venv(tmp_path / "ui", "mlflow==3.17.2")
    (tmp_path / "ui" / tool_venv_module.MARKER).write_text("mlflow==3.16.0\n")
    tool_venv(tmp_path / "ui", "mlflow==3.17.2")
    assert installs == [(tmp_path / "ui", "mlflow==3.17.2")] * 2


def test_a_second_builder_waits_for_the_first_and_does_not_build_again(monkeypatch, tmp_path):
    installs = []

    def install(venv, requirement, timeout):
        installs.append(requirement)
        (venv / tool_venv_module.MARKER).write_text(requirement + "\n")

    monkeypatch.setattr(tool_venv_module, "_install", install)
    (tmp_path / "ui").mkdir()
    with open(tmp_path / ".ui.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # the first `mlbatch up`, mid-build
        told = []
        second = threading.Thread(target=tool_venv, args=(tmp_path / "ui", "mlflow==3.17.2", told.append))
        second.start()
        second.join(timeout=1)
        assert second.is_alive() and told == [tmp_path / "ui"]  # said it is being installed, and waits
        install(tmp_path / "ui", "mlflow==3.17.2", 0)
    second.join(timeout=10)
    assert not second.is_alive() and installs == ["mlflow==3.17.2"] and told == [tmp_path / "ui"]


def test_a_failed_install_is_one_line_and_up_goes_on_without_the_ui(tracked, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(mlflow_ui, "ui_installed", lambda: False)
    monkeypatch.setenv(mlflow_ui.VENV_ENV, str(tmp_path / "ui"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # as with no network: pip finds no mlflow to install
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    env = {}
    assert mlflow_ui.start(free_port(), env, open(os.devnull, "w")) is None and mlflow_ui.UI_ENV not in env
    version = mlflow_ui.client_version()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"MLflow UI: installing mlflow=={version} into {tmp_path / 'ui'} (once; a minute or two) ..."
    assert lines[1].startswith(f"MLflow UI: not started: could not install mlflow=={version} into {tmp_path / 'ui'}: ")
    assert "No matching distribution" in lines[1] and len(lines) == 2
    assert not (tmp_path / "ui" / tool_venv_module.MARKER).exists()
