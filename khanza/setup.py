"""Khanza Sync's own objects in a Khanza database (`khanza-sync setup`): the ledger table, once per
hospital with a user allowed to CREATE (the pipeline's own user does not need it); and throw-away demo,
test and benchmark databases built from the project's fixture and demo data.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection

from khanza import ledger, migrations
from khanza.db import make_engine
from khanza_sync import ownership
from khanza_sync.settings import PROJECT_ROOT, Settings
from khanza_sync.sqlfiles import statements

FIXTURE_SCHEMA = PROJECT_ROOT / "sql" / "khanza_fixture_schema.sql"
DEMO_DATA = PROJECT_ROOT / "sql" / "khanza_demo_data.sql"


def run_sql_file(conn: Connection, path: Path) -> None:
    for stmt in statements(path):
        conn.exec_driver_sql(stmt)


def check_replaceable(settings: Settings, name: str) -> None:
    """Refuse (ownership.NotOwned, one line, exit non-zero) unless `name` is absent on the server of
    `settings` or was created by Khanza Sync: what `recreate_database` checks, for a check before any work."""
    server = make_engine(settings, database="information_schema")
    try:
        with server.connect() as conn:
            ownership.check_mariadb_replaceable(conn, name)
    finally:
        server.dispose()


def recreate_database(settings: Settings, name: str, *sql_files: Path, purpose: str = "demo/test database"
                      ) -> None:
    """Drop and create the latin1 database `name` (as Khanza's are), marked as Khanza Sync's, load the SQL
    files, add the ledger. Only a database Khanza Sync created is dropped: any other existing `name` is
    refused (ownership.NotOwned) before anything changes. For demo, test and benchmark databases."""
    server = make_engine(settings, database="information_schema")
    try:
        with server.begin() as conn:
            ownership.recreate_mariadb_database(conn, name, purpose)
    finally:
        server.dispose()
    engine = make_engine(settings, database=name)
    with engine.begin() as conn:
        for path in sql_files:
            run_sql_file(conn, path)
        ledger.create_table(conn, settings.tz)
    engine.dispose()


def create_demo_database(settings: Settings, name: str, purpose: str = "demo Khanza database") -> None:
    """Drop (only if Khanza Sync's) and create `name` with the fixture schema, demo master data and the ledger."""
    recreate_database(settings, name, FIXTURE_SCHEMA, DEMO_DATA, purpose=purpose)


def private_server_settings(name: str, **overrides) -> Settings:
    """Settings for the database `name` on the project's own MariaDB (khanza_sync/localdb.py), started on
    demand: what demo, trial seeding and benchmarks use, whatever the environment or `.env` say."""
    from khanza_sync import localdb

    try:
        coords = localdb.start(only=("mariadb",))  # the demo, trial seed and benchmarks need no PostgreSQL
    except localdb.LocalDbError as error:
        raise SystemExit(f"the project's private MariaDB is not available: {error}") from error
    values = dict(khanza_db_host=coords.mariadb_host, khanza_db_port=coords.mariadb_port,
                  khanza_db_user=coords.mariadb_user, khanza_db_password="", khanza_db_name=name, _env_file=None)
    values.update(overrides)
    return Settings(**values)


def create_ledger(settings: Settings) -> list[migrations.Step]:
    """The pipeline's own tables in the hospital's Khanza, both from sql/khanza_ledger.sql: the ledger and the staff
    decisions table, brought to this release's schema version in place (khanza/migrations.py: idempotent, additive).
    Returns the steps applied (none when up to date)."""
    engine = make_engine(settings)
    try:
        with engine.begin() as conn:
            return migrations.upgrade(conn, settings.tz)
    finally:
        engine.dispose()
