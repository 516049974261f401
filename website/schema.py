"""The website database's tables, defined once: `online_registrations` and the four master-data tables.

The DDL for SQLite and PostgreSQL is generated from these definitions, both for `create()` and for the
files the website team reads (sql/website_*.sql):

    python -m website.schema --write      (rewrite the files)
    python -m website.schema --check      (exit 1 when a file differs from the definitions)

Timestamps are UTC without time zone; dates are calendar dates at the hospital.

On SQLite, DATE and TIMESTAMP columns are read back as the text stored: the website can store any text
there ('2026-02-30'), and such a row must reach the data checks and be rejected, not fail the read. Python
dates and datetimes are written as SQLAlchemy's SQLite types write them ('YYYY-MM-DD',
'YYYY-MM-DD HH:MM:SS.ffffff'), so text comparisons between stored and bound values keep working.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Sequence

from sqlalchemy import (
    TIMESTAMP, Column, Date, Engine, FunctionElement, Index, Integer, MetaData, String, Table, Text, text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.types import UserDefinedType

from khanza_sync.settings import PROJECT_ROOT

metadata = MetaData()


# ---------------------------------------------------------------- types


class _StoredText(UserDefinedType):
    """SQLite's side of a DATE or TIMESTAMP column: Python dates are written as SQLAlchemy's SQLite type
    (`writer`) writes them, anything else (text the website stored) is passed through, and values are read
    back unparsed. Not a subclass of SQLAlchemy's date types, which the SQLite dialect would swap for its own."""

    cache_ok = True
    ddl_name: str
    writer: type

    def get_col_spec(self, **kw):
        return self.ddl_name

    def bind_processor(self, dialect):
        to_text = self.writer().bind_processor(dialect)
        return lambda value: to_text(value) if isinstance(value, date) else value

    def result_processor(self, dialect, coltype):
        return None


class _SqliteDate(_StoredText):
    ddl_name, writer = "DATE", sqlite.DATE


class _SqliteTimestamp(_StoredText):
    ddl_name, writer = "TIMESTAMP", sqlite.DATETIME


def _date():
    """A calendar date at the hospital."""
    return Date().with_variant(_SqliteDate(), "sqlite")


def _timestamp():
    """A UTC time without time zone."""
    return TIMESTAMP().with_variant(_SqliteTimestamp(), "sqlite")


class utc_now(FunctionElement):
    """The database's current UTC time without time zone (a column default)."""

    type = TIMESTAMP()
    inherit_cache = True


@compiles(utc_now, "sqlite")
def _utc_now_sqlite(element, compiler, **kw):
    return "(datetime('now'))"


@compiles(utc_now, "postgresql")
def _utc_now_postgresql(element, compiler, **kw):
    return "(now() AT TIME ZONE 'utc')"


# PRIMARY KEY without NOT NULL, as the deployed website tables were created (PostgreSQL implies NOT NULL;
# SQLite does not enforce it on a text key, and adding it would change what the website may insert there).
_PLAIN_KEY = dict(primary_key=True, nullable=True)


# ---------------------------------------------------------------- online_registrations

def _strings(**lengths: int) -> list[Column]:
    return [Column(name, String(length)) for name, length in lengths.items()]


registrations = Table(
    "online_registrations", metadata,
    Column("id", String(64), **_PLAIN_KEY),
    Column("created_at", _timestamp(), nullable=False, server_default=utc_now()),
    # the registration as the website took it
    *_strings(nik=16, full_name=100), Column("birth_date", _date()), *_strings(gender=16, phone=20),
    Column("address", Text), *_strings(birth_place=50, mother_name=100, email=100, poliklinik=50, doctor=50),
    Column("visit_date", _date()), *_strings(payment=16, bpjs_number=13, local_queue_number=20),
    # the pipeline's state, and Khanza's numbers once synced; synced_at is when the pipeline last decided the
    # row: synced (numbers written back) or rejected (so "rejected today" can be counted); NULL until then
    Column("status", String(20), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("error_code", String(40)), Column("last_error", Text), Column("next_attempt_at", _timestamp()),
    *_strings(no_rkm_medis=15, no_rawat=17, no_reg=8), Column("synced_at", _timestamp()),
)
_pending = registrations.c.status == "pending"
Index("online_registrations_pending", registrations.c.created_at, sqlite_where=_pending, postgresql_where=_pending,
      info={"doc": "The pipeline's claim query reads pending rows oldest first."})
Index("online_registrations_status", registrations.c.status)


# ---------------------------------------------------------------- master data (Khanza -> website)

_SIZES = {"kd_poli": 5, "nm_poli": 50, "kd_dokter": 20, "nm_dokter": 50, "kd_sps": 5, "nm_sps": 30, "hari_kerja": 6,
          "jam_mulai": 8, "jam_selesai": 8, "slug": 50}  # Khanza's sizes (slug: the website's)


def _text(name: str, **kw) -> Column:
    return Column(name, String(_SIZES[name]), **kw)


def _published_at() -> Column:
    return Column("published_at", _timestamp(), nullable=False)


clinics = Table("khanza_clinics", metadata,
                _text("kd_poli", **_PLAIN_KEY), _text("nm_poli"), _text("slug"), _published_at())
doctors = Table("khanza_doctors", metadata,
                _text("kd_dokter", **_PLAIN_KEY), _text("nm_dokter"), _text("kd_sps"), _text("nm_sps"), _text("slug"),
                _published_at())
schedules = Table("khanza_schedules", metadata,
                  _text("kd_dokter", primary_key=True), _text("kd_poli", nullable=False),
                  _text("hari_kerja", primary_key=True), _text("jam_mulai", primary_key=True), _text("jam_selesai"),
                  Column("kuota", Integer), _published_at(),
                  info={"doc": "Weekly sessions: hari_kerja is Khanza's SENIN..SABTU, AKHAD (Sunday)."})
quota = Table("khanza_quota", metadata,
              Column("visit_date", _date(), primary_key=True), _text("kd_dokter", primary_key=True),
              _text("kd_poli", primary_key=True), _text("hari_kerja", nullable=False),
              *[Column(name, Integer, nullable=False) for name in ("kuota", "registered", "remaining")], _published_at(),
              info={"doc": "One row per upcoming day and doctor+clinic with a session that weekday."})

# ---------------------------------------------------------------- new-registration notifications (PostgreSQL)

# After each INSERT statement into online_registrations the database sends one NOTIFY on NOTIFY_CHANNEL (at
# commit; empty payload, no patient data), which wakes `khanza-sync follow` (website/notify.py) within
# milliseconds. Optional: without the trigger (SQLite, or a table made from older DDL) follow mode polls.
NOTIFY_CHANNEL = "online_registrations"
NOTIFY_TRIGGER = "online_registrations_notify"
_TRIGGERS: dict[tuple[str, str], list[tuple[str, str | None]]] = {
    ("postgresql", registrations.name): [
        ("CREATE OR REPLACE FUNCTION online_registrations_notify() RETURNS trigger\n"
         "LANGUAGE plpgsql AS $$\n"
         "BEGIN\n"
         "    PERFORM pg_notify('online_registrations', '');\n"
         "    RETURN NULL;\n"
         "END;\n"
         "$$", "Wakes Khanza Sync's follow mode: one NOTIFY online_registrations per INSERT statement, no payload."),
        ("DROP TRIGGER IF EXISTS online_registrations_notify ON online_registrations", None),
        ("CREATE TRIGGER online_registrations_notify\n"
         "    AFTER INSERT ON online_registrations\n"
         "    FOR EACH STATEMENT EXECUTE FUNCTION online_registrations_notify()", None),
    ],
}

REGISTRATION_TABLES: tuple[Table, ...] = (registrations,)
MASTER_TABLES: tuple[Table, ...] = (clinics, doctors, schedules, quota)
DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}


# ---------------------------------------------------------------- DDL


def _statements(dialect_name: str, tables: Sequence[Table]) -> list[tuple[str, str | None]]:
    """(statement, comment) for each table and its indexes, in order."""
    dialect = DIALECTS[dialect_name]
    out = []
    for table in tables:
        out.append((str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)), table.info.get("doc")))
        for index in sorted(table.indexes, key=lambda i: i.name):
            out.append((str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect)), index.info.get("doc")))
        out.extend(_TRIGGERS.get((dialect_name, table.name), []))
    # SQLAlchemy indents with tabs and ends lines with ", ": spaces and no trailing blanks read better
    return [("\n".join(line.rstrip() for line in stmt.strip().replace("\t", "    ").splitlines()), doc)
            for stmt, doc in out]


def ddl(dialect_name: str, tables: Sequence[Table] = REGISTRATION_TABLES + MASTER_TABLES) -> list[str]:
    """CREATE TABLE/INDEX IF NOT EXISTS statements (without a final ';') for `dialect_name` (sqlite | postgresql),
    and on PostgreSQL the notification trigger of online_registrations (re-created: safe to run again)."""
    return [stmt for stmt, _ in _statements(dialect_name, tables)]


def create(engine: Engine, tables: Sequence[Table]) -> None:
    """Create `tables` and their indexes where missing, in one transaction."""
    with engine.begin() as conn:
        for stmt in ddl(engine.dialect.name, tables):
            conn.exec_driver_sql(stmt)


# ---------------------------------------------------------------- the shipped .sql files

_GENERATED = ("-- Generated from website/schema.py by `python -m website.schema --write`: edit the definitions there,\n"
              "-- not this file. Safe to run more than once.\n")


@dataclass(frozen=True)
class SqlFile:
    path: Path
    dialect: str
    tables: tuple[Table, ...]
    header: str  # what the website team needs to know, as '--' lines


SQL_FILES = [
    SqlFile(PROJECT_ROOT / "sql" / "website_sqlite.sql", "sqlite", REGISTRATION_TABLES,
            "-- The website's registration store on SQLite (the embedded default).\n"
            "-- Timestamps are UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]'; dates are 'YYYY-MM-DD' at the hospital.\n"),
    SqlFile(PROJECT_ROOT / "sql" / "website_postgresql.sql", "postgresql", REGISTRATION_TABLES,
            "-- The website's registration store on PostgreSQL (production).\n"
            "-- Timestamps are UTC without time zone; dates are calendar dates at the hospital.\n"),
    SqlFile(PROJECT_ROOT / "sql" / "website_master_sqlite.sql", "sqlite", MASTER_TABLES,
            "-- Khanza master data published for the website (SQLite). Written only by the publish-master-data\n"
            "-- flow, which replaces every table's rows in one transaction.\n"
            "-- published_at is UTC text; visit_date is YYYY-MM-DD at the hospital.\n"),
    SqlFile(PROJECT_ROOT / "sql" / "website_master_postgresql.sql", "postgresql", MASTER_TABLES,
            "-- Khanza master data published for the website (PostgreSQL). Written only by the publish-master-data\n"
            "-- flow, which replaces every table's rows in one transaction.\n"
            "-- published_at is UTC without time zone; visit_date is a calendar date at the hospital.\n"),
]


def file_text(sql_file: SqlFile) -> str:
    """The generated content of one shipped .sql file: header, then each statement (with its comment)."""
    parts = [sql_file.header + _GENERATED]
    for stmt, doc in _statements(sql_file.dialect, sql_file.tables):
        parts.append((f"-- {doc}\n" if doc else "") + stmt + ";\n")
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m website.schema", description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite sql/website_*.sql from the definitions")
    action.add_argument("--check", action="store_true", help="exit 1 when a file differs from the definitions")
    args = parser.parse_args(argv)
    stale = []
    for sql_file in SQL_FILES:
        wanted = file_text(sql_file)
        if sql_file.path.exists() and sql_file.path.read_text() == wanted:
            continue
        if args.write:
            sql_file.path.write_text(wanted)
            print(f"wrote {sql_file.path.relative_to(PROJECT_ROOT)}")
        else:
            stale.append(sql_file.path.relative_to(PROJECT_ROOT))
    for path in stale:
        print(f"{path} differs from website/schema.py: run python -m website.schema --write", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
