"""MLflow's UI beside Airflow's in `mlbatch up`: the page every run summary and task log links to.

Served only for the project's own store (SQLite under a local artifact root); a tracking server
(MLFLOW_TRACKING_URI=http...) serves its own UI and the links point there. The address goes to
the Airflow processes as MLBATCH_MLFLOW_UI, so the run pages they link to are on this server.
The project installs the skinny client, whose server has no web pages, and the full `mlflow`
package pins versions the project's own pins fight (pyarrow): so the UI runs from a venv of its
own holding the full package of the client's version, made on the first `mlbatch up` and reused
(tool_venv). A project env that has the full package serves it from there instead.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO

from mlbatch.cli.tool_venv import ToolVenvError, cache_home, tool_venv

UI_ENV = "MLBATCH_MLFLOW_UI"  # the base URL run pages link to (tracking.store.run_page)
VENV_ENV = "MLBATCH_MLFLOW_UI_VENV"  # where the UI's own venv lives, if not under the cache folder


def client_version() -> str:
    """The installed MLflow client's version: the UI's venv gets the full package of the same one."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlflow-skinny")
    except PackageNotFoundError:
        return version("mlflow")


def ui_venv() -> Path:
    """The UI's own venv: MLBATCH_MLFLOW_UI_VENV, else one per version under the cache folder."""
    return Path(os.environ.get(VENV_ENV) or cache_home() / "mlbatch" / f"mlflow-ui-{client_version()}")


def ui_installed() -> bool:
    """Whether MLflow's web pages are installed (the full package), not only its API server."""
    import importlib.util

    spec = importlib.util.find_spec("mlflow")
    if spec is None or spec.origin is None:
        return False
    return (Path(spec.origin).parent / "server" / "js" / "build" / "index.html").is_file()


def store_to_serve() -> str | None:
    """The tracking URI `mlflow ui` should serve: the local store, when tracking is on and no server is set."""
    from mlbatch.run.paths import artifact_root
    from mlbatch.settings import load_settings
    from mlbatch.tracking.store import tracking_uri

    if not load_settings().tracking.mlflow:
        return None
    uri = tracking_uri(artifact_root())
    return uri if uri is not None and uri.startswith("sqlite:///") else None


def ui_command() -> str | None:
    """The `mlflow` that serves the web pages: the project's own if full, else its venv's (made now,
    once); None, said in one line, when that venv cannot be made (no package index)."""
    if ui_installed():
        return str(Path(sys.executable).with_name("mlflow"))
    requirement = f"mlflow=={client_version()}"

    def announce(venv: Path) -> None:
        print(f"MLflow UI: installing {requirement} into {venv} (once; a minute or two) ...", flush=True)

    try:
        venv = tool_venv(ui_venv(), requirement, on_install=announce)
    except ToolVenvError as error:
        print(f"MLflow UI: not started: {error}", flush=True)
        return None
    return str(venv / "bin" / "mlflow")


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def start(port: int, env: dict[str, str], log: IO) -> subprocess.Popen | None:
    """`mlflow ui` on 127.0.0.1:`port` in a process group of its own; None (said why) when not served."""
    uri = store_to_serve() if port else None  # port 0: the UI is not wanted
    if uri is None:
        return None
    if not port_free(port):
        print(f"MLflow UI: port {port} is taken; not started (`mlbatch up --mlflow-port N` picks another)")
        return None
    mlflow = ui_command()
    if mlflow is None:
        return None
    env[UI_ENV] = f"http://127.0.0.1:{port}"
    return subprocess.Popen([mlflow, "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port)],
                            env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
