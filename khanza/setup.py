"""`python -m khanza.setup`: create Khanza Sync's ledger table in the Khanza database (idempotent).

Run once per hospital with a user allowed to CREATE (the pipeline's own user does not need it).
`--demo` instead creates a throw-away Khanza database from the project's fixture and demo data.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from sqlalchemy import Connection

from khanza import ledger
from khanza.db import make_engine
from khanza_sync.settings import PROJECT_ROOT, Settings, get_settings
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Create the ledger table (or a demo Khanza database).")
    parser.add_argument("--demo", action="store_true", help="(re)create KHANZA_DB_NAME from the demo fixture")
    args = parser.parse_args(argv)
    settings = get_settings()
    if args.demo:
        create_demo_database(settings, settings.khanza_db_name)
        print(f"demo Khanza database {settings.khanza_db_name} created")
        return
    engine = make_engine(settings)
    with engine.begin() as conn:
        ledger.create_table(conn)
    print(f"khanza_sync_ledger ready in database {settings.khanza_db_name}")


if __name__ == "__main__":
    main()
