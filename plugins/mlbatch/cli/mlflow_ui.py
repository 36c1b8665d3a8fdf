"""MLflow's UI beside Airflow's in `mlbatch up`: the page every run summary and task log links to.

Served only for the project's own store (SQLite under a local artifact root); a tracking server
(MLFLOW_TRACKING_URI=http...) serves its own UI and the links point there. The address goes to
the Airflow processes as MLBATCH_MLFLOW_UI, so the run pages they link to are on this server.
The project installs the skinny client, whose server has no web pages: the UI needs the full
`mlflow` package (same version); without it `mlbatch up` says how to get it.
"""
from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import IO

UI_ENV = "MLBATCH_MLFLOW_UI"  # the base URL run pages link to (tracking.store.run_page)
INSTALL = "pip install mlflow==3.17.2"  # the full package of the skinny client's version: its web pages


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


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def start(port: int, env: dict[str, str], log: IO) -> subprocess.Popen | None:
    """`mlflow ui` on 127.0.0.1:`port` in a process group of its own; None (said why) when not served."""
    uri = store_to_serve()
    if uri is None:
        return None
    if not ui_installed():
        print(f"MLflow UI: not installed (the project has the skinny client); `{INSTALL}` adds it, "
              f"then `mlbatch up` serves it on 127.0.0.1:{port}")
        return None
    if not port_free(port):
        print(f"MLflow UI: port {port} is taken; not started (`mlbatch up --mlflow-port N` picks another)")
        return None
    env[UI_ENV] = f"http://127.0.0.1:{port}"
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    return subprocess.Popen([mlflow, "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port)],
                            env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
