"""Khanza Sync's own objects in a Khanza database (`khanza-sync setup`): the ledger table, once per
hospital with a user allowed to CREATE (the pipeline's own user does not need it); and throw-away demo,
test and benchmark databases built from the project's fixture and demo data.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection

from khanza import ledger
from khanza.db import make_engine
from khanza_sync.settings import PROJECT_ROOT, Settings
from khanza_sync.sqlfiles import statements

FIXTURE_SCHEMA = PROJECT_ROOT / "sql" / "khanza_fixture_schema.sql"
DEMO_DATA = PROJECT_ROOT / "sql" / "khanza_demo_data.sql"


def run_sql_file(conn: Connection, path: Path) -> None:
    for stmt in statements(path):
        conn.exec_driver_sql(stmt)


def recreate_database(settings: Settings, name: str, *sql_files: Path) -> None:
    """Drop and create the latin1 database `name` (as Khanza's are), load the SQL files, add the ledger.
    For demo, test and benchmark databases only: never point it at a hospital's Khanza."""
    server = make_engine(settings, database="mysql")
    with server.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET latin1")
    server.dispose()
    engine = make_engine(settings, database=name)
    with engine.begin() as conn:
        for path in sql_files:
            run_sql_file(conn, path)
        ledger.create_table(conn)
    engine.dispose()


def create_demo_database(settings: Settings, name: str) -> None:
    """Drop and create `name` with the fixture schema, demo master data and the ledger."""
    recreate_database(settings, name, FIXTURE_SCHEMA, DEMO_DATA)


def create_ledger(settings: Settings) -> None:
    """The pipeline's ledger table in the hospital's Khanza (idempotent: CREATE TABLE IF NOT EXISTS)."""
    engine = make_engine(settings)
    with engine.begin() as conn:
        ledger.create_table(conn)
    engine.dispose()
