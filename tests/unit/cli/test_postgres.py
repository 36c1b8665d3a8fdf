"""The metadata DB's own PostgreSQL cluster: created once, loopback only, restarted on the same data."""
from __future__ import annotations

import os

import pytest

from mlbatch.cli.postgres import DATABASE, LocalPostgres, PostgresUnavailable


@pytest.fixture
def cluster():
    pg = LocalPostgres.throwaway()
    try:
        pg.start()
    except PostgresUnavailable as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(str(error))
        pytest.skip(str(error))
    try:
        yield pg
    finally:
        pg.remove()


def _query(pg: LocalPostgres, sql: str):
    import sqlalchemy

    engine = sqlalchemy.create_engine(pg.url)
    try:
        with engine.begin() as db:
            result = db.execute(sqlalchemy.text(sql))
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def test_it_listens_on_loopback_only_with_the_airflow_database(cluster):
    assert _query(cluster, "SHOW listen_addresses") == "127.0.0.1"
    assert _query(cluster, "SELECT current_database()") == DATABASE


def test_a_restart_keeps_the_data_and_a_second_start_is_harmless(cluster):
    _query(cluster, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)")
    assert cluster.start() == cluster.url  # already running: nothing to do
    cluster.stop()
    assert not cluster.running()
    cluster.start()
    assert _query(cluster, "SELECT n FROM kept") == 7
