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


def test_a_login_without_the_password_is_refused(cluster):
    import psycopg2

    for user in ("airflow", "mlbatch_admin", "postgres"):
        with pytest.raises(psycopg2.OperationalError, match="password"):
            psycopg2.connect(host="127.0.0.1", port=cluster.port, user=user, dbname=DATABASE, connect_timeout=5)
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(host="127.0.0.1", port=cluster.port, user=user, password="airflow", dbname=DATABASE,
                             connect_timeout=5)


def test_the_airflow_role_owns_its_database_but_is_no_superuser(cluster):
    import sqlalchemy

    assert _query(cluster, "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles "
                           "WHERE rolname = current_user") is False
    assert _query(cluster, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()") \
        == "airflow"
    with pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied|must be superuser"):
        _query(cluster, "CREATE TEMP TABLE t (line text); COPY t FROM PROGRAM 'id'")


def test_the_passwords_are_generated_once_and_kept_private(cluster):
    mode = cluster.passwords_file.stat().st_mode & 0o777
    assert mode == 0o600
    url = cluster.url
    assert len(cluster.passwords()["airflow"]) >= 32 and cluster.passwords()["airflow"] in url
    cluster.stop()
    assert cluster.start() == url  # the next `mlbatch up --postgres` logs in with the same one


def test_a_cluster_made_without_passwords_is_not_reused(tmp_path):
    old = LocalPostgres(tmp_path / "postgres", 1)
    (old.data_dir).mkdir()
    (old.data_dir / "PG_VERSION").write_text("15\n")
    with pytest.raises(PostgresUnavailable, match="created without passwords"):
        old.start()
