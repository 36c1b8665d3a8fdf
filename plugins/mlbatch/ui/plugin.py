"""The Airflow plugin: the mlbatch page (a FastAPI app plus a nav entry) and the tasks' extra link.

Registered through the `airflow.plugins` entry point of the installed package (pyproject.toml).
"""
from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from mlbatch.ui.app import app
from mlbatch.ui.link import PAGE_PREFIX, MlbatchPageLink


class MlbatchPlugin(AirflowPlugin):
    name = "mlbatch"
    fastapi_apps = [{"app": app, "url_prefix": PAGE_PREFIX, "name": "mlbatch page"}]
    # a nav entry that shows the app inside Airflow's UI (the href is relative to the UI's base URL)
    external_views = [{"name": "mlbatch", "href": PAGE_PREFIX.lstrip("/") + "/", "url_route": "mlbatch",
                       "destination": "nav", "category": "browse"}]
    operator_extra_links = [MlbatchPageLink()]
