"""Where runs are tracked: MLFLOW_TRACKING_URI, else a SQLite store under a local artifact root."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

LOCK_TIMEOUT_S = 120.0
# the address of the MLflow UI that `mlbatch up` serves for the local store (cli/mlflow_ui.py sets it)
SERVED_UI_ENV = "MLBATCH_MLFLOW_UI"
# `mlflow ui`'s own address, where a person starts it by hand
DEFAULT_UI = "http://127.0.0.1:5000"


def tracking_uri(root: str) -> str | None:
    """MLFLOW_TRACKING_URI when set (a server, Databricks, a database), else
    sqlite:///{root}/mlflow/mlflow.db for a local artifact root, else None (not tracked)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    local = _local_path(root)
    # SQLite, not MLflow's file store: MLflow 3 keeps the file store in maintenance mode only
    return f"sqlite:///{Path(local, 'mlflow', 'mlflow.db')}" if local is not None else None


def artifact_location(root: str, uri: str) -> str | None:
    """Where a new experiment keeps its files: beside the default store; a server picks its own."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return None
    local = _local_path(root)
    return str(Path(local, "mlflow", "artifacts")) if local is not None else None


def shown(uri: str) -> str:
    """The URI as logs, XCom and summaries may show it: a password in it (a server's basic auth,
    a database's login) becomes ***."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def scrub(text: str, uri: str) -> str:
    """`text` (an error message, say) without the URI's password, whatever form it quotes it in."""
    from urllib.parse import unquote, urlsplit

    password = urlsplit(uri).password
    for secret in {password, unquote(password or "")} - {None, ""}:
        text = text.replace(secret, "***")
    return text


def open_command(uri: str) -> str:
    """How a person looks at the runs: the tracking server's address; for the local store, the UI
    `mlbatch up` serves, else the command that serves it (the project's mlflow-skinny has no web
    pages: `mlflow ui` needs the full package)."""
    uri = shown(uri)
    if uri.startswith(("http://", "https://")):
        return f"open {uri} in a browser"
    if served := os.environ.get(SERVED_UI_ENV):
        return f"open {served} in a browser (MLflow's UI, served by `mlbatch up`)"
    return (f"mlflow ui --backend-store-uri {uri} (the full mlflow package: pip install mlflow, "
            "in an environment of its own; `mlbatch up` serves this UI itself)")


def open_hint(uri: str, page: str) -> str:
    """The task log's words on where a run is: its page, and the command to run first where no UI
    serves it yet."""
    if uri.startswith(("http://", "https://")) or os.environ.get(SERVED_UI_ENV):
        return f"its page: {page}"
    return f"open it with: {open_command(uri)}, then {page}"


def run_page(uri: str, experiment: str, run: str) -> str:
    """The run's page: on the server, or on the local UI `mlbatch up` serves (MLBATCH_MLFLOW_UI; by
    default `mlflow ui`'s own address)."""
    uri = shown(uri)
    local = os.environ.get(SERVED_UI_ENV) or DEFAULT_UI
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else local.rstrip("/")
    return f"{base}/#/experiments/{experiment}/runs/{run}"


@contextlib.contextmanager
def store_lock(uri: str, run_id: str) -> Iterator[None]:
    """Serialise writers of one SQLite file (first-use table creation and concurrent writes by
    two steps that finish together); other stores take concurrent clients as they are."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    from mlbatch.cache.locks import LeaseLock

    db = uri[len("sqlite:///"):]
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    lock = LeaseLock(f"{db}.lock", run_id=run_id)
    lock.acquire(timeout_s=LOCK_TIMEOUT_S)
    try:
        yield
    finally:
        lock.release()


def _local_path(root: str) -> str | None:
    if root.startswith("file://"):
        return root[len("file://"):]
    return None if "://" in root else str(Path(root).resolve())


def local_file(uri: str) -> str | None:
    """The filesystem path of a local artifact URI, None for a remote one."""
    return _local_path(uri) if uri else None

