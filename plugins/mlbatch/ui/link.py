"""The extra link from each mlbatch task in Airflow's task view to the run on the mlbatch page."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

PAGE_PREFIX = "/mlbatch"  # where the plugin mounts its FastAPI app (plugin.py)


def run_page_path(dag_id: str, run_id: str) -> str:
    return f"{PAGE_PREFIX}/batches/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


class MlbatchPageLink(BaseOperatorLink):
    name = "mlbatch page"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        # Airflow's base URL when one is set (behind a proxy, a sub-path), else a path on the UI's own origin
        from airflow.sdk.configuration import conf

        base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
        return base + run_page_path(ti_key.dag_id, ti_key.run_id) + f"#{quote(ti_key.task_id, safe='')}"
