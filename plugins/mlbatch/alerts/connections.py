"""Is an Airflow connection defined? For `mlbatch lint` only: never called at DAG parse time,
where looking a connection up would mean a database or secrets-backend call per parse."""
from __future__ import annotations

import os


def connection_defined(conn_id: str) -> bool | None:
    """True/False when it can tell (environment, then the metadata DB); None when it cannot."""
    if os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}"):
        return True
    try:
        from airflow.models import Connection
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            return session.scalar(select(Connection.id).where(Connection.conn_id == conn_id)) is not None
    except Exception:  # noqa: BLE001 - no Airflow home or DB here: lint cannot tell, and says nothing
        return None
