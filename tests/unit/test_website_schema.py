"""website/schema.py without a database server: the DDL for SQLite, PostgreSQL and MySQL/MariaDB, the shipped
sql/website_*.sql files (tables and the pipeline's grants), the schema created in a temporary SQLite file
(columns, indexes, how dates are stored and read back), and how the store chooses its claim on MySQL."""
from __future__ import annotations

import ast
import re
import sqlite3
from datetime import date, datetime

import pytest
from sqlalchemy import insert, select
from sqlalchemy.dialects import mysql, postgresql, sqlite

from khanza_sync.settings import PROJECT_ROOT
from website import schema, store

# What the website's tables have always been (name, declared type, NOT NULL, default, position in the key).
EXPECTED = {
    "online_registrations": (
        "id VARCHAR(64) - - 1 | created_at TIMESTAMP notnull datetime('now') 0 | nik VARCHAR(16) - - 0 | "
        "full_name VARCHAR(100) - - 0 | birth_date DATE - - 0 | gender VARCHAR(16) - - 0 | phone VARCHAR(20) - - 0 | "
        "address TEXT - - 0 | birth_place VARCHAR(50) - - 0 | mother_name VARCHAR(100) - - 0 | "
        "email VARCHAR(100) - - 0 | poliklinik VARCHAR(50) - - 0 | doctor VARCHAR(50) - - 0 | visit_date DATE - - 0 | "
        "payment VARCHAR(16) - - 0 | bpjs_number VARCHAR(13) - - 0 | local_queue_number VARCHAR(20) - - 0 | "
        "status VARCHAR(20) notnull 'pending' 0 | attempts INTEGER notnull 0 0 | error_code VARCHAR(40) - - 0 | "
        "last_error TEXT - - 0 | next_attempt_at TIMESTAMP - - 0 | no_rkm_medis VARCHAR(15) - - 0 | "
        "no_rawat VARCHAR(17) - - 0 | no_reg VARCHAR(8) - - 0 | synced_at TIMESTAMP - - 0 | "
        # added since (issue 25), last: nullable, the website's, as ALTER TABLE ADD COLUMN leaves them
        "village_code VARCHAR(13) - - 0 | village VARCHAR(100) - - 0 | district_code VARCHAR(13) - - 0 | "
        "district VARCHAR(100) - - 0 | regency_code VARCHAR(13) - - 0 | regency VARCHAR(100) - - 0 | "
        "province_code VARCHAR(13) - - 0 | province VARCHAR(100) - - 0"),
    "khanza_clinics": "kd_poli VARCHAR(5) - - 1 | nm_poli VARCHAR(50) - - 0 | slug VARCHAR(50) - - 0 | "
                      "published_at TIMESTAMP notnull - 0",
    "khanza_doctors": "kd_dokter VARCHAR(20) - - 1 | nm_dokter VARCHAR(50) - - 0 | kd_sps VARCHAR(5) - - 0 | "
                      "nm_sps VARCHAR(30) - - 0 | slug VARCHAR(50) - - 0 | published_at TIMESTAMP notnull - 0",
    "khanza_schedules": "kd_dokter VARCHAR(20) notnull - 1 | kd_poli VARCHAR(5) notnull - 0 | "
                        "hari_kerja VARCHAR(6) notnull - 2 | jam_mulai VARCHAR(8) notnull - 3 | "
                        "jam_selesai VARCHAR(8) - - 0 | kuota INTEGER - - 0 | published_at TIMESTAMP notnull - 0",
    "khanza_quota": "visit_date DATE notnull - 1 | kd_dokter VARCHAR(20) notnull - 2 | kd_poli VARCHAR(5) notnull - 3 | "
                    "hari_kerja VARCHAR(6) notnull - 0 | kuota INTEGER notnull - 0 | registered INTEGER notnull - 0 | "
                    "remaining INTEGER notnull - 0 | published_at TIMESTAMP notnull - 0",
    "khanza_regions": "level VARCHAR(10) notnull - 1 | id INTEGER notnull - 2 | name VARCHAR(60) notnull - 0 | "
                      "published_at TIMESTAMP notnull - 0",
}


@pytest.fixture
def engine(tmp_path):
    engine = store.make_engine(f"sqlite:///{tmp_path / 'website.db'}")
    schema.create(engine, schema.REGISTRATION_TABLES)
    schema.create(engine, schema.MASTER_TABLES)
    schema.create(engine, schema.REGISTRATION_TABLES + schema.MASTER_TABLES)  # again: IF NOT EXISTS
    yield engine
    engine.dispose()


def raw(engine) -> sqlite3.Connection:
    return sqlite3.connect(engine.url.database)


@pytest.mark.parametrize("sql_file", schema.SQL_FILES, ids=lambda f: f.path.name)
def test_shipped_sql_files_are_the_generated_ddl(sql_file):
    assert sql_file.path.read_text() == schema.file_text(sql_file), "run: python -m website.schema --write"
    assert "Generated from website/schema.py" in sql_file.path.read_text()


def test_check_command_agrees():
    assert schema.main(["--check"]) == 0


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_ddl_per_dialect(dialect):
    statements = schema.ddl(dialect)
    trigger = ["CREATE OR REPLACE FUNCTION online_registrations_notify() RETURNS trigger",
               "DROP TRIGGER IF EXISTS online_registrations_notify", "CREATE TRIGGER online_registrations_notify"]
    assert [s.splitlines()[0].split(" (")[0].split(" ON ")[0] for s in statements] == [
        "CREATE TABLE IF NOT EXISTS online_registrations",
        "CREATE INDEX IF NOT EXISTS online_registrations_pending",
        "CREATE INDEX IF NOT EXISTS online_registrations_status",
        *(trigger if dialect == "postgresql" else []),
        "CREATE TABLE IF NOT EXISTS khanza_clinics", "CREATE TABLE IF NOT EXISTS khanza_doctors",
        "CREATE TABLE IF NOT EXISTS khanza_schedules", "CREATE TABLE IF NOT EXISTS khanza_quota",
        "CREATE TABLE IF NOT EXISTS khanza_regions"]
    default = {"sqlite": "TIMESTAMP DEFAULT (datetime('now'))",
               "postgresql": "TIMESTAMP WITHOUT TIME ZONE DEFAULT (now() AT TIME ZONE 'utc')"}[dialect]
    assert f"created_at {default} NOT NULL," in statements[0]
    assert statements[1].endswith("ON online_registrations (created_at) WHERE status = 'pending'")
    assert all(";" not in re.sub(r"\$\$.*?\$\$", "", s, flags=re.S) for s in statements)  # ';' only in $$ bodies


def test_mysql_ddl():
    """One CREATE TABLE IF NOT EXISTS per table with its keys inside (MySQL 8 has no CREATE INDEX IF NOT EXISTS), UTC
    DATETIME(6) timestamps, InnoDB utf8mb4, the claim's (status, created_at) key and the claim_token column."""
    statements = schema.ddl("mysql")
    assert statements == schema.ddl("mariadb")
    assert [s.splitlines()[0] for s in statements] == [
        f"CREATE TABLE IF NOT EXISTS {t.name} (" for t in schema.REGISTRATION_TABLES + schema.MASTER_TABLES]
    registrations = statements[0]
    assert "created_at DATETIME(6) NOT NULL DEFAULT (UTC_TIMESTAMP(6))," in registrations
    assert "next_attempt_at DATETIME(6)," in registrations and "synced_at DATETIME(6)," in registrations
    assert "TIMESTAMP" not in registrations.replace("UTC_TIMESTAMP", "")
    assert "claim_token VARCHAR(32)," in registrations
    assert registrations.endswith("PRIMARY KEY (id),\n    KEY online_registrations_pending (status, created_at)\n"
                                  ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci")
    assert all(s.endswith("ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci") for s in statements)
    assert all("published_at DATETIME(6) NOT NULL" in s for s in statements[1:])
    assert not any("pg_notify" in s or "INDEX IF NOT EXISTS" in s for s in statements)
    # the shared table is unchanged: claim_token exists only on MySQL
    assert schema.CLAIM_TOKEN not in schema.registrations.c and schema.CLAIM_TOKEN in schema.mysql_table(schema.registrations).c


def test_grants_files_give_the_pipeline_its_columns_only():
    for dialect in ("postgresql", "mysql"):
        grants = schema.grants_text(dialect)
        update = " ".join(re.search(r"GRANT UPDATE \((.*?)\)", grants, re.S).group(1).split())
        columns = [c.strip() for c in update.split(",")]
        assert columns == list(schema.PIPELINE_UPDATES + schema.RECONCILE_UPDATES) + (
            [schema.CLAIM_TOKEN] if dialect == "mysql" else [])
        assert not set(columns) & set(schema.WEBSITE_INSERTS) - set(schema.RECONCILE_UPDATES)
        body = re.sub(r"(?m)^--.*$", "", grants)
        on_registrations = [g for g in body.split(";") if "ON online_registrations" in g]
        assert len(on_registrations) == 2  # SELECT, and UPDATE of its columns: never INSERT, DELETE or ALL
        assert not any(word in g for g in on_registrations for word in ("INSERT", "DELETE", "ALL"))


class _Dialect:
    def __init__(self, name, version, mariadb):
        self.name, self.server_version_info, self.is_mariadb = name, version, mariadb


@pytest.mark.parametrize("dialect, method", [
    (_Dialect("postgresql", (15, 4), False), "returning"),
    (_Dialect("sqlite", (3, 40, 1), False), "returning"),
    (_Dialect("mysql", (10, 11, 19, "MariaDB"), True), "skip_locked"),
    (_Dialect("mariadb", (10, 6, 0), True), "skip_locked"),
    (_Dialect("mysql", (10, 5, 27, "MariaDB"), True), "token"),
    (_Dialect("mysql", (10, 3, 39), True), "token"),
    (_Dialect("mysql", (8, 0, 36), False), "skip_locked"),
    (_Dialect("mysql", (8, 0, 0), False), "token"),
    (_Dialect("mysql", (5, 7, 44), False), "token"),
])
def test_claim_method_by_server(dialect, method):
    assert store.claim_method(dialect) == method


def test_mysql_claims_compile_without_a_limit_inside_in():
    """MariaDB refuses `IN (SELECT ... LIMIT n)` (error 1235): the SKIP LOCKED select stands alone, the token claim
    is one UPDATE ... ORDER BY ... LIMIT."""
    now = datetime(2026, 11, 27)
    locked = (select(schema.registrations.c.id).where(store.status_is("pending"), store.due(now))
              .order_by(schema.registrations.c.created_at).limit(5).with_for_update(skip_locked=True))
    assert str(locked.compile(dialect=mysql.dialect())).endswith("LIMIT %s FOR UPDATE SKIP LOCKED")
    t = schema.mysql_table(schema.registrations)
    stamp = store._OrderedUpdate(t, [t.c.created_at, t.c.id], 7).values(claim_token="x")
    sql = str(stamp.compile(dialect=mysql.dialect()))
    assert sql.startswith("UPDATE online_registrations SET claim_token=%s")
    assert sql.endswith("ORDER BY online_registrations.created_at, online_registrations.id LIMIT 7")


def test_postgresql_notification_trigger():
    """Follow mode's wake-up (website/notify.py): one NOTIFY per INSERT statement, no payload, PostgreSQL only."""
    pg = "\n".join(schema.ddl("postgresql", schema.REGISTRATION_TABLES))
    assert "PERFORM pg_notify('online_registrations', '');" in pg
    assert "AFTER INSERT ON online_registrations\n    FOR EACH STATEMENT EXECUTE FUNCTION online_registrations_notify()" in pg
    assert schema.NOTIFY_CHANNEL == "online_registrations" and schema.NOTIFY_TRIGGER == "online_registrations_notify"
    assert "pg_notify" not in "\n".join(schema.ddl("sqlite")) + "\n".join(schema.ddl("postgresql", schema.MASTER_TABLES))


def test_claim_locks_rows_on_postgresql_only():
    stmt = store.claim_statement(5, datetime(2026, 11, 27), 600)
    assert "FOR UPDATE SKIP LOCKED" in str(stmt.compile(dialect=postgresql.dialect()))
    assert "FOR UPDATE" not in str(stmt.compile(dialect=sqlite.dialect()))


def test_sqlite_tables_columns_and_indexes(engine):
    with raw(engine) as conn:
        for table, spec in EXPECTED.items():
            got = [f"{name} {type_} {'notnull' if notnull else '-'} {default or '-'} {pk}"
                   for _, name, type_, notnull, default, pk in conn.execute(f"PRAGMA table_info({table})")]
            assert got == spec.split(" | "), table
        indexes = {name: (partial, sql) for name, partial, sql in conn.execute(
            "SELECT l.name, l.partial, m.sql FROM pragma_index_list('online_registrations') l "
            "LEFT JOIN sqlite_master m ON m.name = l.name")}
    assert indexes["online_registrations_pending"][0] == 1
    assert indexes["online_registrations_pending"][1].endswith("(created_at) WHERE status = 'pending'")
    assert indexes["online_registrations_status"] == (0, "CREATE INDEX online_registrations_status "
                                                         "ON online_registrations (status)")


def test_sqlite_stores_dates_as_text_and_reads_them_back_unparsed(engine):
    t = schema.registrations
    with engine.begin() as conn:
        conn.execute(insert(t).values(id="typed", created_at=datetime(2026, 11, 27, 1, 2, 3),
                                      birth_date=date(1985, 3, 14), next_attempt_at=datetime(2026, 11, 27, 1, 0, 0, 5)))
        conn.execute(insert(t).values(id="junk", birth_date="2026-02-30", visit_date="tomorrow"))
        conn.execute(insert(t).values(id="website", next_attempt_at="2026-11-27 01:00:00"))
    with raw(engine) as conn:
        stored = {r[0]: r[1:] for r in conn.execute(
            "SELECT id, created_at, birth_date, visit_date, next_attempt_at FROM online_registrations")}
    assert stored["typed"] == ("2026-11-27 01:02:03.000000", "1985-03-14", None, "2026-11-27 01:00:00.000005")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", stored["junk"][0])  # the database's default
    assert stored["junk"][1:3] == ("2026-02-30", "tomorrow")
    # a junk date reaches the data checks as text instead of failing the read
    rows = store.fetch_rows(engine).set_index("id")
    assert rows.loc["junk", ["birth_date", "visit_date"]].tolist() == ["2026-02-30", "tomorrow"]
    assert rows.loc["typed", "birth_date"] == "1985-03-14"
    with engine.connect() as conn:
        assert conn.execute(select(t.c.birth_date).where(t.c.id == "junk")).scalar_one() == "2026-02-30"
    # bound times compare with the stored text, with or without fractions
    assert store.count_due(engine, datetime(2026, 11, 27, 0, 59, 59)) == 1  # junk only (no retry time)
    assert store.count_due(engine, datetime(2026, 11, 27, 1, 0, 0)) == 2  # + website's '01:00:00'
    assert store.count_due(engine, datetime(2026, 11, 27, 1, 0, 0, 5)) == 3


def test_no_sql_is_assembled_from_strings_in_website():
    """Statements are Core constructs: no f-string, % or + reaches text()/exec_driver_sql()/execute()."""
    for path in sorted((PROJECT_ROOT / "website").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
                    "text", "exec_driver_sql", "execute", "read_sql"):
                for arg in node.args[:1]:
                    assert not isinstance(arg, (ast.JoinedStr, ast.BinOp)), f"{path.name}:{node.lineno}"
