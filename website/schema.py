"""The website database's tables, defined once: `online_registrations` and the four master-data tables.

The DDL for SQLite, PostgreSQL and MySQL/MariaDB is generated from these definitions, both for `create()` and
for the files the website team reads (sql/website_*.sql, and the pipeline's grants sql/website_grants_*.sql):

    python -m website.schema --write      (rewrite the files)
    python -m website.schema --check      (exit 1 when a file differs from the definitions)

Timestamps are UTC without time zone; dates are calendar dates at the hospital. On MySQL/MariaDB they are
DATETIME(6) (never TIMESTAMP, which converts to and from the session's time zone and, on older servers, may update
itself), the tables InnoDB utf8mb4, and the indexes are written inside CREATE TABLE (MySQL has no
CREATE INDEX IF NOT EXISTS, and no partial index: the claim's index is (status, created_at)).

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
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.types import UserDefinedType

from khanza_sync import regions
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
    """A UTC time without time zone (MySQL: DATETIME(6), stored as given, whatever the session's time zone)."""
    return TIMESTAMP().with_variant(_SqliteTimestamp(), "sqlite").with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


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


@compiles(utc_now, "mysql")  # an expression default: MariaDB 10.2.1+, MySQL 8.0.13+
@compiles(utc_now, "mariadb")
def _utc_now_mysql(element, compiler, **kw):
    return "(UTC_TIMESTAMP(6))"


# PRIMARY KEY without NOT NULL, as the deployed website tables were created (PostgreSQL implies NOT NULL;
# SQLite does not enforce it on a text key, and adding it would change what the website may insert there).
_PLAIN_KEY = dict(primary_key=True, nullable=True)
# MySQL/MariaDB table options (ignored by the other dialects): InnoDB for row locks, utf8mb4 for every script and emoji
_MYSQL = dict(mysql_engine="InnoDB", mysql_default_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci")


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
    # contract version 2 (website/contract.py), last so a table made anew and one upgraded in place are the same:
    # where the patient lives (optional, the website's): Kemendagri code and/or name per level, village first
    *[Column(name, String(regions.CODE_SIZE if name.endswith("_code") else regions.NAME_SIZE))
      for name in regions.CONTRACT_COLUMNS],
    **_MYSQL,
)
_pending = registrations.c.status == "pending"
Index("online_registrations_pending", registrations.c.created_at, sqlite_where=_pending, postgresql_where=_pending,
      info={"doc": "The pipeline's claim query reads pending rows oldest first."})
Index("online_registrations_status", registrations.c.status)

# Who writes which column of online_registrations (the grants files, docs/website.md and its tests follow these).
# The website inserts the registration as the patient gave it (created_at may be left to its default) and may
# later set status to 'cancel_requested'; everything else is the pipeline's.
WEBSITE_INSERTS = ("id", "created_at", "nik", "full_name", "birth_date", "gender", "phone", "address", "birth_place",
                   "mother_name", "email", "poliklinik", "doctor", "visit_date", "payment", "bpjs_number",
                   "local_queue_number") + regions.CONTRACT_COLUMNS
PIPELINE_UPDATES = ("status", "attempts", "error_code", "last_error", "next_attempt_at", "no_rkm_medis", "no_rawat",
                    "no_reg", "synced_at")
RECONCILE_UPDATES = ("doctor", "poliklinik", "visit_date")  # reconcile writes back a visit the desk moved


# ---------------------------------------------------------------- master data (Khanza -> website)

_SIZES = {"kd_poli": 5, "nm_poli": 50, "kd_dokter": 20, "nm_dokter": 50, "kd_sps": 5, "nm_sps": 30, "hari_kerja": 6,
          "jam_mulai": 8, "jam_selesai": 8, "slug": 50}  # Khanza's sizes (slug: the website's)


def _text(name: str, **kw) -> Column:
    return Column(name, String(_SIZES[name]), **kw)


def _published_at() -> Column:
    return Column("published_at", _timestamp(), nullable=False)


clinics = Table("khanza_clinics", metadata,
                _text("kd_poli", **_PLAIN_KEY), _text("nm_poli"), _text("slug"), _published_at(), **_MYSQL)
doctors = Table("khanza_doctors", metadata,
                _text("kd_dokter", **_PLAIN_KEY), _text("nm_dokter"), _text("kd_sps"), _text("nm_sps"), _text("slug"),
                _published_at(), **_MYSQL)
schedules = Table("khanza_schedules", metadata,
                  _text("kd_dokter", primary_key=True), _text("kd_poli", nullable=False),
                  _text("hari_kerja", primary_key=True), _text("jam_mulai", primary_key=True), _text("jam_selesai"),
                  Column("kuota", Integer), _published_at(),
                  info={"doc": "Weekly sessions: hari_kerja is Khanza's SENIN..SABTU, AKHAD (Sunday)."}, **_MYSQL)
quota = Table("khanza_quota", metadata,
              Column("visit_date", _date(), primary_key=True), _text("kd_dokter", primary_key=True),
              _text("kd_poli", primary_key=True), _text("hari_kerja", nullable=False),
              *[Column(name, Integer, nullable=False) for name in ("kuota", "registered", "remaining")], _published_at(),
              info={"doc": "One row per upcoming day and doctor+clinic with a session that weekday."}, **_MYSQL)
region_names = Table("khanza_regions", metadata,
                     Column("level", String(10), primary_key=True), Column("id", Integer, primary_key=True),
                     Column("name", String(60), nullable=False), _published_at(),
                     info={"doc": "The region names Khanza knows (level: village, district, regency or province; "
                                  "id: Khanza's kd_kel, kd_kec, kd_kab or kd_prop), for a form that offers them."},
                     **_MYSQL)

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
MASTER_TABLES: tuple[Table, ...] = (clinics, doctors, schedules, quota, region_names)
DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect(), "mysql": mysql.dialect()}


def family(dialect_name: str) -> str:
    """sqlite | postgresql | mysql: MariaDB (SQLAlchemy's `mariadb` dialect) counts as MySQL here."""
    return "mysql" if dialect_name in ("mysql", "mariadb") else dialect_name


# ---------------------------------------------------------------- MySQL / MariaDB

# The claim of a MySQL/MariaDB server without FOR UPDATE SKIP LOCKED (MariaDB before 10.6, MySQL before 8.0.1):
# `UPDATE ... ORDER BY created_at, id LIMIT n` stamps this run's token here, then the run reads its rows by it
# (website/store.py). Unused on newer servers, where a table without it (e.g. made by a Laravel migration) is fine.
CLAIM_TOKEN = "claim_token"
_MYSQL_EXTRA: dict[str, list[tuple[str, int]]] = {registrations.name: [(CLAIM_TOKEN, 32)]}  # name, VARCHAR size
# MySQL has no partial index: the claim reads status = 'pending' in created_at order, and InnoDB appends the key
# (id) to every index, so (status, created_at) gives the claim's order; the status queries use its prefix.
_MYSQL_KEYS: dict[str, list[tuple[str, tuple[str, ...], str]]] = {
    registrations.name: [("online_registrations_pending", ("status", "created_at"),
                          "the claim and follow mode's poll read pending rows oldest first; queue-status and "
                          "reconcile read by status")],
}
_mysql_metadata = MetaData()


def mysql_table(table: Table) -> Table:
    """`table` as it is on MySQL/MariaDB: its own indexes (_MYSQL_KEYS) and extra columns (_MYSQL_EXTRA)."""
    if table.name in _mysql_metadata.tables:
        return _mysql_metadata.tables[table.name]
    copy = table.to_metadata(_mysql_metadata)
    copy.indexes.clear()
    for name, size in _MYSQL_EXTRA.get(table.name, []):
        copy.append_column(Column(name, String(size)))
    for name, columns, doc in _MYSQL_KEYS.get(table.name, []):
        Index(name, *[copy.c[c] for c in columns], info={"doc": doc})
    return copy


def _mysql_create_table(table: Table) -> str:
    """CREATE TABLE IF NOT EXISTS with the indexes inside it: one statement, safe to run again on MySQL 8 too."""
    stmt = str(CreateTable(table, if_not_exists=True).compile(dialect=DIALECTS["mysql"])).strip()
    head, options = stmt.rsplit("\n)", 1)
    keys = "".join(f",\n\tKEY {index.name} ({', '.join(c.name for c in index.columns)})"
                   for index in sorted(table.indexes, key=lambda i: i.name))
    return f"{head}{keys}\n) {options.strip()}"


# ---------------------------------------------------------------- DDL


def _statements(dialect_name: str, tables: Sequence[Table]) -> list[tuple[str, str | None]]:
    """(statement, comment) for each table and its indexes, in order."""
    dialect_name = family(dialect_name)
    dialect = DIALECTS[dialect_name]
    out = []
    for table in tables:
        if dialect_name == "mysql":
            table = mysql_table(table)
            docs = [table.info.get("doc")] + [f"{i.name}: {i.info['doc']}" for i in sorted(table.indexes, key=lambda i: i.name)
                                              if i.info.get("doc")]
            out.append((_mysql_create_table(table), "\n-- ".join(d for d in docs if d) or None))
            continue
        out.append((str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)), table.info.get("doc")))
        for index in sorted(table.indexes, key=lambda i: i.name):
            out.append((str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect)), index.info.get("doc")))
        out.extend(_TRIGGERS.get((dialect_name, table.name), []))
    # SQLAlchemy indents with tabs and ends lines with ", ": spaces and no trailing blanks read better
    return [("\n".join(line.rstrip() for line in stmt.strip().replace("\t", "    ").splitlines()), doc)
            for stmt, doc in out]


def ddl(dialect_name: str, tables: Sequence[Table] = REGISTRATION_TABLES + MASTER_TABLES) -> list[str]:
    """CREATE TABLE/INDEX IF NOT EXISTS statements (without a final ';') for `dialect_name` (sqlite | postgresql |
    mysql | mariadb), and on PostgreSQL the notification trigger of online_registrations (re-created: safe to run
    again)."""
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
    grants: bool = False  # the pipeline's account (grants_text) instead of the tables


def _sql(name: str, dialect: str, tables: tuple[Table, ...], header: str, grants: bool = False) -> SqlFile:
    return SqlFile(PROJECT_ROOT / "sql" / name, dialect, tables, header, grants)


SQL_FILES = [
    _sql("website_sqlite.sql", "sqlite", REGISTRATION_TABLES,
         "-- The website's registration store on SQLite (the embedded default).\n"
         "-- Timestamps are UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]'; dates are 'YYYY-MM-DD' at the hospital.\n"),
    _sql("website_postgresql.sql", "postgresql", REGISTRATION_TABLES,
         "-- The website's registration store on PostgreSQL (production).\n"
         "-- Timestamps are UTC without time zone; dates are calendar dates at the hospital.\n"),
    _sql("website_mysql.sql", "mysql", REGISTRATION_TABLES,
         "-- The website's registration store on MySQL or MariaDB: MariaDB 10.2.1+ or MySQL 8.0.13+ (the UTC default\n"
         "-- of created_at is an expression). Run it in the website's database: mysql -u root -p website < this file.\n"
         "-- Timestamps are UTC DATETIME(6) (not TIMESTAMP: no time-zone conversion); dates are calendar dates at the\n"
         "-- hospital. InnoDB and utf8mb4, so any script and emoji is kept. The indexes are inside CREATE TABLE.\n"),
    _sql("website_master_sqlite.sql", "sqlite", MASTER_TABLES,
         "-- Khanza master data published for the website (SQLite). Written only by the publish-master-data\n"
         "-- flow, which replaces every table's rows in one transaction.\n"
         "-- published_at is UTC text; visit_date is YYYY-MM-DD at the hospital.\n"),
    _sql("website_master_postgresql.sql", "postgresql", MASTER_TABLES,
         "-- Khanza master data published for the website (PostgreSQL). Written only by the publish-master-data\n"
         "-- flow, which replaces every table's rows in one transaction.\n"
         "-- published_at is UTC without time zone; visit_date is a calendar date at the hospital.\n"),
    _sql("website_master_mysql.sql", "mysql", MASTER_TABLES,
         "-- Khanza master data published for the website (MySQL/MariaDB). Written only by the publish-master-data\n"
         "-- flow, which replaces every table's rows in one transaction.\n"
         "-- published_at is UTC DATETIME(6); visit_date is a calendar date at the hospital.\n"),
    _sql("website_grants_postgresql.sql", "postgresql", (), "", grants=True),
    _sql("website_grants_mysql.sql", "mysql", (), "", grants=True),
]


# ---------------------------------------------------------------- the pipeline's account on the website database

_GRANTS_GENERATED = ("-- Generated from website/schema.py by `python -m website.schema --write`: edit the definitions there,\n"
                     "-- not this file.\n")
_PIPELINE_UPDATE_DOC = ("-- claim lease, write_outcomes and defer_due touch only the pipeline's own columns; reconcile also "
                        "writes\n-- back a visit the desk moved (doctor, clinic, date).\n")


def _pipeline_update_columns(dialect: str) -> str:
    columns = PIPELINE_UPDATES + RECONCILE_UPDATES
    if dialect == "mysql":
        columns += tuple(name for name, _ in _MYSQL_EXTRA[registrations.name])
    lines, line = [], ""
    for column in columns:  # wrapped as the files have always been
        if line and len(line) + len(column) + 2 > 100:
            lines.append(line + ",")
            line = ""
        line = f"{line}, {column}" if line else column
    return ("\n" + " " * 14).join(lines + [line])


def grants_text(dialect: str) -> str:
    """The pipeline's least-privilege account on the website database (PostgreSQL role, MySQL/MariaDB user)."""
    master = ", ".join(t.name for t in MASTER_TABLES)
    columns = _pipeline_update_columns(dialect)
    if dialect == "postgresql":
        return (
            "-- Khanza Sync's own PostgreSQL role on the website database: read registrations, write back\n"
            "-- statuses and Khanza's numbers. Nothing else (least privilege).\n"
            + _GRANTS_GENERATED +
            "--\n"
            "-- Run as the database owner, once, after sql/website_postgresql.sql and sql/website_master_postgresql.sql:\n"
            "--     psql -d website -v khanza_sync_password=\"$KHANZA_SYNC_WEB_PASSWORD\" -f sql/website_grants_postgresql.sql\n"
            "-- (the password comes from your password manager via the environment; never write it into this file).\n"
            "-- Then WEBSITE_DB_URL=postgresql+psycopg://khanza_sync:<password>@<host>:5432/website in .env only.\n"
            "-- With row-level security on online_registrations (Supabase), also give this role its policy: docs/website.md.\n"
            "--\n"
            "-- Rotate:  ALTER ROLE khanza_sync PASSWORD '<new>';  then update WEBSITE_DB_URL and restart the worker.\n"
            "-- Not granted: INSERT or DELETE on registrations, TRUNCATE, DDL, UPDATE of what the patient typed (nik, names,\n"
            "-- birth date, phone, address...).\n"
            "CREATE ROLE khanza_sync LOGIN PASSWORD :'khanza_sync_password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;\n"
            "\n"
            "GRANT CONNECT ON DATABASE :\"DBNAME\" TO khanza_sync;\n"
            "GRANT USAGE ON SCHEMA public TO khanza_sync;\n"
            "\n"
            "-- website/store.py: claim_pending, count_due, fetch_rows read the table (FOR UPDATE SKIP LOCKED needs\n"
            "-- an UPDATE right too, which the column grant below gives).\n"
            f"GRANT SELECT ON {registrations.name} TO khanza_sync;\n"
            "\n"
            + _PIPELINE_UPDATE_DOC +
            f"GRANT UPDATE ({columns})\n"
            f"    ON {registrations.name} TO khanza_sync;\n"
            "\n"
            "-- publish_master_data replaces the rows of the website's copy of Khanza's master data (tables created by the owner).\n"
            f"GRANT SELECT, INSERT, DELETE ON {master} TO khanza_sync;\n")
    user = "'khanza_sync'@'%'"
    return (
        "-- Khanza Sync's own MySQL/MariaDB user on the website database: read registrations, write back\n"
        "-- statuses and Khanza's numbers. Nothing else (least privilege).\n"
        + _GRANTS_GENERATED +
        "--\n"
        "-- Run as an administrator, once, in the website's database, after sql/website_mysql.sql and\n"
        "-- sql/website_master_mysql.sql:\n"
        "--     mysql -u root -p website < sql/website_grants_mysql.sql\n"
        "-- First replace NULL below with the password in quotes (from your password manager; never commit it).\n"
        "-- Left as NULL the script stops at the first PREPARE, so a user without password cannot be made.\n"
        "-- Then WEBSITE_DB_URL=mysql+pymysql://khanza_sync:<password>@<host>:3306/website in .env only.\n"
        "-- '%' is any address: write the hospital's address instead where you can (here and in every GRANT).\n"
        "-- A table made otherwise (e.g. a Laravel migration) without claim_token: leave claim_token out below\n"
        "-- (it is used only on servers without FOR UPDATE SKIP LOCKED: MariaDB before 10.6, MySQL before 8.0.1).\n"
        "--\n"
        "-- Rotate:  ALTER USER 'khanza_sync'@'%' IDENTIFIED BY '<new>';  then update WEBSITE_DB_URL and restart the worker.\n"
        "-- Not granted: INSERT or DELETE on registrations, DROP, ALTER, CREATE, UPDATE of what the patient typed (nik,\n"
        "-- names, birth date, phone, address...), any other database.\n"
        "SET @khanza_sync_password = NULL;\n"
        "\n"
        "SET @ddl = CONCAT('CREATE USER IF NOT EXISTS ''khanza_sync''@''%'' IDENTIFIED BY ', QUOTE(@khanza_sync_password));\n"
        "PREPARE create_user FROM @ddl;\n"
        "EXECUTE create_user;\n"
        "DEALLOCATE PREPARE create_user;\n"
        "SET @khanza_sync_password = NULL;\n"
        "SET @ddl = NULL;\n"
        "\n"
        "-- website/store.py: the claim (FOR UPDATE SKIP LOCKED, or claim_token), count_due, fetch_rows read the table.\n"
        f"GRANT SELECT ON {registrations.name} TO {user};\n"
        "\n"
        + _PIPELINE_UPDATE_DOC +
        f"GRANT UPDATE ({columns})\n"
        f"    ON {registrations.name} TO {user};\n"
        "\n"
        "-- publish_master_data replaces the rows of the website's copy of Khanza's master data (tables created by an\n"
        "-- administrator).\n"
        + "".join(f"GRANT SELECT, INSERT, DELETE ON {t.name} TO {user};\n" for t in MASTER_TABLES))


def file_text(sql_file: SqlFile) -> str:
    """The generated content of one shipped .sql file: header, then each statement (with its comment)."""
    if sql_file.grants:
        return grants_text(sql_file.dialect)
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
