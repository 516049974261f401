"""The website team's guide (docs/website.md), run as it is written: the tests play the website's part on each
database with the account the guide gives it (insert, read back its own final number, ask for a cancellation),
while Khanza Sync runs its real flows with its own restricted account (sql/website_grants_*.sql); and the same
website account cannot read other patients' rows (the PostgreSQL policies) or touch the pipeline's columns.

Every fenced block of the guide marked `<!-- example: NAME -->` is executed by a test here (EXERCISED names them;
a new example without a test fails `test_every_example_of_the_guide_is_exercised`). Accounts are made with
random names (ks_test_...) substituted for the guide's `website`, `khanza_sync`, `anon` and `authenticated`, and
dropped afterwards. Supabase itself cannot run here: its API roles, `auth.uid()` (as Supabase defines it, from the
request's JWT claims) and its `supabase_realtime` publication are stood in for, and a browser's request is what
PostgREST does with it (SET ROLE and the JWT claims).
"""
from __future__ import annotations

import json
import re
import secrets
import sqlite3
import subprocess
import sys
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from khanza_sync.settings import PROJECT_ROOT
from khanza_sync.sqlfiles import statements as file_statements
from tests import support as root
from website import master_data, schema, store

GUIDE = PROJECT_ROOT / "docs" / "website.md"
EXERCISED = {"website-statements", "postgresql-listen", "supabase-realtime", "mysql-website-user", "php-pdo",
             "supabase-policies", "postgresql-website-role", "sqlite-website", "add-region-columns"}
READ_COLUMNS = ["id", "status", "no_reg", "no_rawat", "error_code", "last_error", "local_queue_number",
                "poliklinik", "doctor", "visit_date", "synced_at"]


# ---------------------------------------------------------------- reading the guide


def examples() -> dict[str, tuple[str, str]]:
    """The guide's marked examples: name -> (language, code)."""
    found = re.findall(r"<!-- example: ([\w-]+) -->\n```(\w+)\n(.*?)\n```", GUIDE.read_text(), re.S)
    assert len({name for name, _, _ in found}) == len(found), "two examples share a name"
    return {name: (language, code) for name, language, code in found}


def sql_statements(code: str) -> list[str]:
    """The statements of a SQL example, without comment lines; a $$-quoted body stays whole."""
    out, current, quoted = [], [], False
    for line in code.splitlines():
        if not quoted and line.lstrip().startswith("--"):
            continue
        current.append(line)
        quoted ^= line.count("$$") % 2 == 1
        if not quoted and line.rstrip().endswith(";"):
            out.append("\n".join(current).strip().rstrip(";"))
            current = []
    assert not "".join(current).strip(), f"a statement without its ';': {current}"
    return out


def example_sql(name: str) -> list[str]:
    language, code = examples()[name]
    assert language == "sql", name
    return sql_statements(code)


def website_statements() -> tuple[str, str, str]:
    """Statement 1 (register), 2 (read back), 3 (ask for a cancellation) of section 2."""
    register, read, cancel = example_sql("website-statements")
    return register, read, cancel


def renamed(sql: str, **names: str) -> str:
    """`sql` with the guide's account names replaced by the test's (whole words only)."""
    for old, new in names.items():
        sql = re.sub(rf"(?<![\w.]){re.escape(old)}(?!\w)", new, sql)
    return sql


def one_line(sql: str) -> str:
    return " ".join(sql.split())


def registration_params(reg: dict) -> dict:
    """What the website's form gives statement 1 (every field but created_at, left to the default)."""
    return {key: reg.get(key) for key in schema.WEBSITE_INSERTS if key != "created_at"}


# ---------------------------------------------------------------- the guide against the code


def test_every_example_of_the_guide_is_exercised():
    assert set(examples()) == EXERCISED


def test_the_guide_lists_every_column_with_who_writes_it():
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", GUIDE.read_text().split("## 2.")[0], re.M)
    assert [name for name, _ in rows] == [c.name for c in schema.registrations.columns]
    website = [name for name, who in rows if who.strip().startswith("website")]
    pipeline = [name for name, who in rows if who.strip().startswith("Khanza Sync")]
    assert website == list(schema.WEBSITE_INSERTS)
    assert pipeline == list(schema.PIPELINE_UPDATES)


def test_the_website_statements_and_accounts_agree_with_the_schema():
    register, read, _ = website_statements()
    inserted = re.search(r"\((.*?)\)", register, re.S).group(1)
    assert [c.strip() for c in inserted.split(",")] == [c for c in schema.WEBSITE_INSERTS if c != "created_at"]
    assert [c.strip() for c in re.search(r"SELECT (.*?)\sFROM", read, re.S).group(1).split(",")] == READ_COLUMNS
    for name in ("mysql-website-user", "postgresql-website-role", "supabase-policies"):
        grants = one_line(" ".join(example_sql(name)))
        insert = re.search(r"GRANT INSERT \((.*?)\)", grants).group(1)
        assert [c.strip() for c in insert.split(",")] == list(schema.WEBSITE_INSERTS), name
        select = [c.strip() for c in re.search(r"SELECT \((.*?)\)", grants).group(1).split(",")]
        assert select[:len(READ_COLUMNS)] == READ_COLUMNS, name
        assert "UPDATE (status)" in grants, name


def test_the_php_example_runs_the_guide_statements():
    language, code = examples()["php-pdo"]
    assert language == "php"
    in_php = [one_line(sql) for sql in re.findall(r"<<<'SQL'\n(.*?)\nSQL\);", code, re.S)]
    assert in_php == [one_line(sql) for sql in website_statements()]


# ---------------------------------------------------------------- the flows, as the pipeline's account


@pytest.fixture
def pipeline(monkeypatch, tmp_path, khanza, prefect_harness):
    """Point the flows at a website URL (Khanza as in the other flow tests); returns a function taking the URL."""
    def configure(website_url: str) -> None:
        gen = root.flows_as(monkeypatch, tmp_path, website_url)
        next(gen)
    yield configure
    from tasks.resources import dispose_all

    dispose_all()


def run_sync() -> None:
    from flows.sync_registrations import sync_registrations

    root.completed(sync_registrations)


def run_reconcile() -> None:
    from flows.reconcile_queue_numbers import reconcile_queue_numbers

    root.completed(reconcile_queue_numbers)


def run_publish() -> None:
    from flows.publish_master_data import publish_master_data

    root.completed(publish_master_data)


def khanza_numbers(khanza, registration_id: str) -> tuple[str, str]:
    """(no_rawat, no_reg) of the visit Khanza holds for `registration_id` (through the ledger)."""
    with khanza.connect() as conn:
        return tuple(conn.execute(text(
            "SELECT r.no_rawat, r.no_reg FROM khanza_sync_ledger l JOIN reg_periksa r ON r.no_rawat = l.no_rawat "
            "WHERE l.registration_id = :id"), {"id": registration_id}).one())


def khanza_visit_state(khanza, registration_id: str) -> str:
    with khanza.connect() as conn:
        return conn.execute(text("SELECT r.stts FROM khanza_sync_ledger l JOIN reg_periksa r ON r.no_rawat = l.no_rawat "
                                 "WHERE l.registration_id = :id"), {"id": registration_id}).scalar_one()


def two_patients(prefix: str) -> tuple[dict, dict]:
    first = root.registration(id=f"{prefix}-{uuid.uuid4().hex}", local_queue_number="A-07")
    second = root.registration(id=f"{prefix}-{uuid.uuid4().hex}", full_name="Sri Lestari", gender="Perempuan",
                               poliklinik="anak", doctor="dr-citra-spa")
    return first, second


def assert_synced_with_khanzas_number(row: dict, khanza, registration_id: str) -> None:
    assert row["status"] == "synced", row
    no_rawat, no_reg = khanza_numbers(khanza, registration_id)
    assert (row["no_rawat"], row["no_reg"]) == (no_rawat, no_reg) and no_reg


# ---------------------------------------------------------------- PHP and MariaDB


def _mysql_admin():
    return create_engine(root.mysql_server_url(root.MYSQL_WEB_TEST_DB), isolation_level="AUTOCOMMIT",
                         poolclass=NullPool)


@contextmanager
def mysql_accounts():
    """The guide's website user and the pipeline's user (sql/website_grants_mysql.sql) on the MariaDB website
    database, with random names; yields (website URL, pipeline URL); both dropped afterwards."""
    tag = secrets.token_hex(4)
    website, pipeline = f"ks_test_web_{tag}", f"ks_test_{tag}"
    password = secrets.token_urlsafe(16)
    body = (PROJECT_ROOT / "sql" / "website_grants_mysql.sql").read_text().replace(
        "SET @khanza_sync_password = NULL;", f"SET @khanza_sync_password = '{password}';", 1)
    grants = [renamed(s, khanza_sync=pipeline) for s in file_statements(_write(body))]
    user = [renamed(s, website=website).replace("change-this-password", password)
            for s in example_sql("mysql-website-user")]
    assert not any(re.search(r"'(website|khanza_sync)'", s) for s in grants + user), "never the real accounts"
    admin = _mysql_admin()
    try:
        raw = admin.raw_connection()  # the statements as the mysql client sends them (no %-formatting)
        try:
            with raw.cursor() as cur:
                for stmt in grants + user:
                    cur.execute(stmt)
        finally:
            raw.close()
        base = make_url(root.mysql_server_url(root.MYSQL_WEB_TEST_DB))
        yield (base.set(username=website, password=password).render_as_string(hide_password=False),
               base.set(username=pipeline, password=password).render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            for name in (website, pipeline):
                for host in ("%%", "localhost"):
                    conn.exec_driver_sql(f"DROP USER IF EXISTS '{name}'@'{host}'")
        admin.dispose()


def _write(body: str) -> Path:
    import tempfile

    handle = tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False)
    handle.write(body)
    handle.close()
    return Path(handle.name)


def _mysql_denied(engine, sql: str, **params) -> int:
    """The MySQL error number refusing `sql` to `engine`'s account."""
    with engine.begin() as conn, pytest.raises(exc.DBAPIError) as refused:
        conn.execute(text(sql), params)
    return refused.value.orig.args[0]


@pytest.fixture
def mariadb_store(mysql_website_url):
    url = root.new_website_store(mysql_website_url, drop=True)
    admin = store.make_engine(url)
    with admin.begin() as conn:  # the master data the website reads: made by the administrator, as the guide says
        for table in master_data.TABLES:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    schema.create(admin, schema.MASTER_TABLES)
    admin.dispose()
    return url


def test_php_site_on_mariadb_with_its_least_privilege_user(mariadb_store, pipeline, khanza):
    register, read, cancel = website_statements()
    first, second = two_patients("php")
    with mysql_accounts() as (website_url, pipeline_url):
        site = create_engine(website_url, poolclass=NullPool)  # what PDO does, through PyMySQL
        try:
            with site.begin() as conn:
                for reg in (first, second):
                    conn.execute(text(register), registration_params(reg))
            with site.connect() as conn:
                row = conn.execute(text(read), {"id": first["id"]}).mappings().one()
            assert row["status"] == "pending" and row["local_queue_number"] == "A-07" and row["no_reg"] is None

            pipeline(pipeline_url)  # Khanza Sync as its own restricted user
            run_sync()
            with site.connect() as conn:
                rows = {r: conn.execute(text(read), {"id": r}).mappings().one() for r in (first["id"], second["id"])}
            for reg in (first, second):
                assert_synced_with_khanzas_number(rows[reg["id"]], khanza, reg["id"])

            with site.begin() as conn:
                assert conn.execute(text(cancel), {"id": first["id"]}).rowcount == 1
            run_reconcile()
            with site.connect() as conn:
                row = conn.execute(text(read), {"id": first["id"]}).mappings().one()
            assert (row["status"], row["error_code"]) == ("cancelled", "CANCELLED")
            assert khanza_visit_state(khanza, first["id"]) == "Batal"
            with site.begin() as conn:  # a cancelled row is not asked again
                assert conn.execute(text(cancel), {"id": first["id"]}).rowcount == 0

            run_publish()
            with site.connect() as conn:
                assert conn.execute(text("SELECT COUNT(*) FROM khanza_clinics")).scalar() > 0

            # what the website's user may not do (1142: the table, 1143: the column)
            other = second["id"]
            assert _mysql_denied(site, "UPDATE online_registrations SET no_reg = '999' WHERE id = :i", i=other) == 1143
            assert _mysql_denied(site, "UPDATE online_registrations SET nik = '0' WHERE id = :i", i=other) == 1143
            assert _mysql_denied(site, "SELECT nik, full_name, phone FROM online_registrations") == 1143
            assert _mysql_denied(site, "INSERT INTO online_registrations (id, status, no_reg) "
                                       "VALUES ('x', 'synced', '001')") == 1143
            assert _mysql_denied(site, "DELETE FROM online_registrations WHERE id = :i", i=other) == 1142
            assert _mysql_denied(site, "DROP TABLE online_registrations") == 1142
            assert _mysql_denied(site, "DELETE FROM khanza_clinics") == 1142
        finally:
            site.dispose()


def test_the_pipelines_mysql_user_cannot_do_more(mariadb_store):
    with mysql_accounts() as (_, pipeline_url):
        engine = create_engine(pipeline_url, poolclass=NullPool)
        try:
            for sql, code in [("INSERT INTO online_registrations (id) VALUES ('x')", 1142),
                              ("DELETE FROM online_registrations", 1142),
                              ("DROP TABLE online_registrations", 1142),
                              ("UPDATE online_registrations SET nik = '0'", 1143),
                              ("UPDATE online_registrations SET full_name = 'X'", 1143),
                              ("CREATE TABLE ks_test_x (a int)", 1142),
                              ("SELECT * FROM mysql.user", 1142)]:
                assert _mysql_denied(engine, sql) == code, sql
        finally:
            engine.dispose()


# ---------------------------------------------------------------- PostgreSQL: Supabase's row-level security


SUPABASE_UID = """
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid
$$"""


@pytest.fixture
def pg_store(postgres_url):
    """A fresh website store on PostgreSQL with fresh master-data tables (the owner makes them, as the guide says);
    the master tables, the stand-in publication and Khanza Sync's additions are removed afterwards."""
    url = root.new_website_store(postgres_url, drop=True)
    admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def drop_master():
        with admin.connect() as conn:
            for table in master_data.TABLES:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table} CASCADE")
            conn.exec_driver_sql("DROP PUBLICATION IF EXISTS supabase_realtime")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS registration_status_notify ON online_registrations")
            conn.exec_driver_sql("DROP FUNCTION IF EXISTS registration_status_notify()")
    drop_master()
    schema.create(store.make_engine(url), schema.MASTER_TABLES)
    yield url
    drop_master()
    admin.dispose()


@contextmanager
def pg_roles(url: str, *names: str):
    """Roles of the guide under test names (guide name -> test name), each dropped with what it owns afterwards."""
    tag = secrets.token_hex(4)
    roles = {name: f"ks_test_{name[:4]}_{tag}" for name in names}
    admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        yield roles
    finally:
        with admin.connect() as conn:
            for role in roles.values():
                if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
                    conn.exec_driver_sql(f"DROP OWNED BY {role}")
                    conn.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()


def pipeline_role(admin_url: str, role: str, password: str) -> str:
    """Khanza Sync's role made by sql/website_grants_postgresql.sql (psql variables filled in); returns its URL."""
    body = ((PROJECT_ROOT / "sql" / "website_grants_postgresql.sql").read_text()
            .replace(":'khanza_sync_password'", f"'{password}'").replace(':"DBNAME"', f'"{root.PG_TEST_DB}"'))
    run_as_owner(admin_url, [renamed(s, khanza_sync=role) for s in file_statements(_write(body))])
    return admin_url.replace("://postgres@", f"://{role}:{password}@")


def run_as_owner(url: str, sql: list[str]) -> None:
    """`sql` as the database owner, in one transaction, as psql sends it (no %-formatting)."""
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        for stmt in sql:
            conn.execute(stmt)


@contextmanager
def browser(url: str, role: str, user_id: str | None):
    """A request as PostgREST makes it for a browser: the API role, with the session's JWT claims (none: anon)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"SET ROLE {role}")
            claims = {"role": role} if user_id is None else {"sub": user_id, "role": role}
            conn.execute(text("SELECT set_config('request.jwt.claims', :c, false)"), {"c": json.dumps(claims)})
            conn.commit()  # the session's role and claims must outlive a rolled-back statement
            yield conn
            conn.rollback()
    finally:
        engine.dispose()


def _pg_denied(conn, sql: str, **params) -> str:
    """The SQLSTATE refusing `sql` (the transaction is rolled back)."""
    with pytest.raises(exc.DBAPIError) as refused:
        conn.execute(text(sql), params)
    conn.rollback()
    return refused.value.orig.sqlstate


def test_supabase_public_key_inserts_and_reads_back_only_its_own_rows(pg_store, pipeline, khanza):
    register, read, cancel = website_statements()
    mine, theirs = two_patients("supa")
    with pg_roles(pg_store, "anon", "authenticated", "khanza_sync") as roles:
        anon, signed_in, pipe = roles["anon"], roles["authenticated"], roles["khanza_sync"]
        # Supabase's stand-ins: its API roles, auth.uid(), and its default grants on new public tables
        run_as_owner(pg_store, [
            f"CREATE ROLE {anon} NOLOGIN", f"CREATE ROLE {signed_in} NOLOGIN", "CREATE SCHEMA IF NOT EXISTS auth",
            SUPABASE_UID, f"GRANT USAGE ON SCHEMA auth, public TO {anon}, {signed_in}",
            f"GRANT ALL ON online_registrations, {', '.join(master_data.TABLES)} TO {anon}, {signed_in}",
            "CREATE PUBLICATION supabase_realtime"])
        pipeline_url = pipeline_role(pg_store, pipe, secrets.token_urlsafe(16))
        names = dict(anon=anon, authenticated=signed_in, khanza_sync=pipe)
        run_as_owner(pg_store, [renamed(s, **names) for s in example_sql("supabase-policies")]
                     + example_sql("supabase-realtime"))
        me, them = str(uuid.uuid4()), str(uuid.uuid4())

        with browser(pg_store, signed_in, me) as conn:
            conn.execute(text(register), registration_params(mine))
            conn.commit()
            assert conn.execute(text(read), {"id": mine["id"]}).mappings().one()["status"] == "pending"
        with browser(pg_store, signed_in, them) as conn:
            conn.execute(text(register), registration_params(theirs))
            conn.commit()
        with browser(pg_store, anon, None) as conn:  # the public key without a session: nothing
            assert _pg_denied(conn, register, **registration_params(root.registration())) == "42501"
            assert _pg_denied(conn, read, id=mine["id"]) == "42501"

        pipeline(pipeline_url)  # Khanza Sync through the policy made for it
        run_sync()

        with browser(pg_store, signed_in, me) as conn:
            row = conn.execute(text(read), {"id": mine["id"]}).mappings().one()
            assert_synced_with_khanzas_number(row, khanza, mine["id"])
            # another patient's row: invisible, and cannot be cancelled
            assert conn.execute(text(read), {"id": theirs["id"]}).first() is None
            assert conn.execute(text("SELECT COUNT(*) FROM online_registrations")).scalar() == 1
            assert conn.execute(text(cancel), {"id": theirs["id"]}).rowcount == 0
            # nor claimed as one's own, nor the pipeline's columns touched, nor patient data read back
            assert _pg_denied(conn, "INSERT INTO online_registrations (id, nik, user_id) VALUES (:i, '1', :u)",
                              i=f"supa-{uuid.uuid4().hex}", u=them) == "42501"
            assert _pg_denied(conn, "UPDATE online_registrations SET no_reg = '999' WHERE id = :i", i=mine["id"]) == "42501"
            assert _pg_denied(conn, "UPDATE online_registrations SET status = 'synced' WHERE id = :i",
                              i=mine["id"]) == "42501"  # the policy allows only cancel_requested
            assert _pg_denied(conn, "SELECT nik, full_name FROM online_registrations") == "42501"
            assert _pg_denied(conn, "DELETE FROM online_registrations WHERE id = :i", i=mine["id"]) == "42501"
            assert conn.execute(text(cancel), {"id": mine["id"]}).rowcount == 1
            conn.commit()
        run_reconcile()
        run_publish()
        with browser(pg_store, signed_in, me) as conn:
            assert conn.execute(text(read), {"id": mine["id"]}).mappings().one()["status"] == "cancelled"
        with browser(pg_store, signed_in, them) as conn:
            assert conn.execute(text(read), {"id": theirs["id"]}).mappings().one()["status"] == "synced"
        with browser(pg_store, anon, None) as conn:  # the master data: everyone reads, nobody else writes
            assert conn.execute(text("SELECT COUNT(*) FROM khanza_clinics")).scalar() > 0
            assert _pg_denied(conn, "DELETE FROM khanza_clinics") == "42501"
        assert khanza_visit_state(khanza, mine["id"]) == "Batal"
        with create_engine(pg_store, poolclass=NullPool).connect() as conn:  # Realtime will send the table's changes
            assert conn.execute(text("SELECT COUNT(*) FROM pg_publication_tables WHERE pubname = 'supabase_realtime' "
                                     "AND tablename = 'online_registrations'")).scalar() == 1


def test_postgresql_site_with_its_own_role_hears_its_number(pg_store, pipeline, khanza):
    register, read, cancel = website_statements()
    mine, other = two_patients("pgsite")
    with pg_roles(pg_store, "website") as roles:
        password = secrets.token_urlsafe(16)
        run_as_owner(pg_store, [renamed(s, website=roles["website"]).replace("change-this-password", password)
                                for s in example_sql("postgresql-website-role")])
        listen = example_sql("postgresql-listen")
        run_as_owner(pg_store, [s for s in listen if not s.startswith("LISTEN")])
        site_url = pg_store.replace("://postgres@", f"://{roles['website']}:{password}@")
        site = create_engine(site_url, poolclass=NullPool)
        listener = psycopg.connect(make_url(site_url).set(drivername="postgresql").render_as_string(hide_password=False),
                                   autocommit=True)
        try:
            for stmt in listen:
                if stmt.startswith("LISTEN"):
                    listener.execute(stmt)
            with site.begin() as conn:
                for reg in (mine, other):
                    conn.execute(text(register), registration_params(reg))
            pipeline(pg_store)
            run_sync()
            heard = {n.payload for n in listener.notifies(timeout=10, stop_after=2)}
            assert heard == {mine["id"], other["id"]}  # one notification per row the pipeline decided
            with site.connect() as conn:
                assert_synced_with_khanzas_number(conn.execute(text(read), {"id": mine["id"]}).mappings().one(),
                                                  khanza, mine["id"])
            with site.begin() as conn:
                assert conn.execute(text(cancel), {"id": mine["id"]}).rowcount == 1
            run_reconcile()
            heard = {n.payload for n in listener.notifies(timeout=10, stop_after=2)}
            assert heard == {mine["id"]}  # cancel_requested (the website's own change), then cancelled
            with site.connect() as conn:
                assert conn.execute(text(read), {"id": mine["id"]}).mappings().one()["status"] == "cancelled"
                for sql in ("UPDATE online_registrations SET no_reg = '999'", "SELECT nik FROM online_registrations",
                            "DELETE FROM online_registrations", "INSERT INTO online_registrations (id, status) "
                                                                "VALUES ('x', 'synced')"):
                    assert _pg_denied(conn, sql) == "42501", sql
        finally:
            listener.close()
            site.dispose()


# ---------------------------------------------------------------- SQLite


def test_sqlite_site_registers_reads_back_and_cancels(tmp_path, pipeline, khanza):
    url = root.new_website_store(f"sqlite:///{tmp_path / 'website.db'}")
    register, read, cancel = website_statements()
    mine, _ = two_patients("lite")
    site = sqlite3.connect(tmp_path / "website.db")  # the website's own process: its own connection
    site.row_factory = sqlite3.Row
    try:
        for stmt in example_sql("sqlite-website"):
            site.execute(stmt)
        site.execute(register, registration_params(mine))
        site.commit()
        pipeline(url)
        run_sync()
        row = dict(site.execute(read, {"id": mine["id"]}).fetchone())
        assert_synced_with_khanzas_number(row, khanza, mine["id"])
        assert site.execute(cancel, {"id": mine["id"]}).rowcount == 1
        site.commit()
        run_reconcile()
        assert site.execute(read, {"id": mine["id"]}).fetchone()["status"] == "cancelled"
    finally:
        site.close()


# ---------------------------------------------------------------- a table the website's framework made


LARAVEL_TABLE = """
CREATE TABLE online_registrations (
    id char(36) NOT NULL,
    user_id bigint unsigned DEFAULT NULL,
    nik varchar(16) NOT NULL,
    full_name varchar(100) NOT NULL,
    birth_date date NOT NULL,
    gender varchar(16) NOT NULL,
    phone varchar(20) NOT NULL,
    address text NOT NULL,
    birth_place varchar(50) DEFAULT NULL,
    mother_name varchar(100) DEFAULT NULL,
    email varchar(100) DEFAULT NULL,
    poliklinik varchar(50) NOT NULL,
    doctor varchar(50) NOT NULL,
    visit_date date NOT NULL,
    payment varchar(16) NOT NULL,
    bpjs_number varchar(13) DEFAULT NULL,
    local_queue_number varchar(20) DEFAULT NULL,
    status varchar(20) NOT NULL DEFAULT 'pending',
    attempts int unsigned NOT NULL DEFAULT 0,
    error_code varchar(40) DEFAULT NULL,
    last_error text DEFAULT NULL,
    next_attempt_at timestamp NULL DEFAULT NULL,
    no_rkm_medis varchar(15) DEFAULT NULL,
    no_rawat varchar(17) DEFAULT NULL,
    no_reg varchar(8) DEFAULT NULL,
    synced_at timestamp NULL DEFAULT NULL,
    created_at timestamp NULL DEFAULT NULL,
    updated_at timestamp NULL DEFAULT NULL ON UPDATE current_timestamp(),
    deleted_at timestamp NULL DEFAULT NULL,
    PRIMARY KEY (id),
    KEY online_registrations_user_id_index (user_id),
    KEY online_registrations_status_created_at_index (status, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"""


def test_a_laravel_made_table_syncs_with_only_the_url_changed(mysql_website_url, khanza, prefect_harness, tmp_path):
    """The table as `php artisan migrate` makes it on MariaDB (a uuid key, the framework's own columns, TIMESTAMP
    columns, `updated_at ... ON UPDATE`, its own index names, no claim_token), rows written as Eloquent writes them
    (UTC, from a session in the hospital's time zone). `khanza-sync check` and `khanza-sync sync` pass with the
    default settings and nothing but WEBSITE_DB_URL pointing there; the framework's columns are left alone."""
    root.new_website_store(mysql_website_url, drop=True)  # marks and empties the test database
    admin = create_engine(mysql_website_url, poolclass=NullPool)
    rows = [root.registration(id=str(uuid.uuid4())) for _ in range(3)]
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql("DROP TABLE online_registrations")
            conn.exec_driver_sql(LARAVEL_TABLE)
            conn.exec_driver_sql("SET time_zone = '+07:00'")  # the site's own session: what is stored must not move
            for i, reg in enumerate(rows):
                conn.execute(text(
                    "INSERT INTO online_registrations (id, user_id, nik, full_name, birth_date, gender, phone, "
                    "address, birth_place, mother_name, email, poliklinik, doctor, visit_date, payment, bpjs_number, "
                    "local_queue_number, created_at, updated_at) VALUES (:id, :user_id, :nik, :full_name, :birth_date, "
                    ":gender, :phone, :address, :birth_place, :mother_name, :email, :poliklinik, :doctor, "
                    ":visit_date, :payment, :bpjs_number, :local_queue_number, CONVERT_TZ(:created_at, '+00:00', "
                    "'+07:00'), '2020-01-01 00:00:00')"), {**reg, "user_id": 40 + i})
        check = khanza_sync_cli(tmp_path, mysql_website_url, "check")
        assert "ok    website table online_registrations: contract version 1 of 2: 26 columns as website/schema.py " \
               "defines them, without the optional village_code, village, district_code, district, regency_code, " \
               "regency, province_code, province (read as empty until added" in check, check
        assert "(and 3 of the website's own, left alone)" in check, check
        assert "claims with FOR UPDATE SKIP LOCKED" in check, check
        sync = khanza_sync_cli(tmp_path, mysql_website_url, "sync")
        assert "3 registrations: created=3 duplicate=0 rejected=0 deferred=0" in sync, sync
        with admin.connect() as conn:
            got = {r["id"]: r for r in conn.execute(text(
                "SELECT id, status, no_reg, user_id, deleted_at, updated_at, created_at, synced_at "
                "FROM online_registrations")).mappings()}
        for i, reg in enumerate(rows):
            row = got[reg["id"]]
            assert row["status"] == "synced" and row["no_reg"] == khanza_numbers(khanza, reg["id"])[1]
            assert row["user_id"] == 40 + i and row["deleted_at"] is None  # the framework's own columns
            assert row["updated_at"].year > 2020  # ON UPDATE fired: the row really changed
            # Khanza Sync's session is UTC: the instant the site stored reads back as the UTC it meant
            assert abs(row["created_at"] - reg["created_at"]) < timedelta(seconds=1)
            assert timedelta(0) < row["synced_at"] - row["created_at"] < timedelta(hours=1)
    finally:
        admin.dispose()


def server_zone() -> str:
    from tests.flows.test_check import server_zone as zone

    return zone()


def khanza_sync_cli(cwd: Path, website_url: str, command: str) -> str:
    """`khanza-sync COMMAND` as an operator runs it (on the session's Prefect server); asserts exit 0."""
    from prefect.settings import PREFECT_API_URL

    env = {**_cli_env(website_url), "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run([str(Path(sys.executable).with_name("khanza-sync")), command], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "Traceback" not in output, output
    return output


def _cli_env(website_url: str) -> dict[str, str]:
    """The environment of `khanza-sync`: the test Khanza database and the default settings, and WEBSITE_DB_URL."""
    import os

    cfg = root.base_settings()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KHANZA_", "WEBSITE_", "MAPPINGS_"))}
    env.update({"KHANZA_DB_HOST": cfg.khanza_db_host, "KHANZA_DB_PORT": str(cfg.khanza_db_port),
                "KHANZA_DB_USER": cfg.khanza_db_user, "KHANZA_DB_PASSWORD": cfg.khanza_db_password.get_secret_value(),
                "KHANZA_DB_NAME": cfg.khanza_db_name, "WEBSITE_DB_URL": website_url,
                # the hospital's zone is the Khanza server's (here the test server's clock), as check demands
                "HOSPITAL_TIMEZONE": server_zone()})
    return env


@pytest.mark.parametrize("website_url", ["sqlite", "postgresql", "mariadb"], indirect=True)
def test_the_guides_region_columns_upgrade_a_table_made_before_them(website_url):
    """The guide's ALTER TABLE statements are the ones `khanza-sync setup --website` prints, and they bring a
    table made before the region columns (contract version 1) to version 2, on each database."""
    from khanza_sync.regions import CONTRACT_COLUMNS
    from website import contract

    statements = example_sql("add-region-columns")
    engine = store.make_engine(website_url)
    try:
        with engine.begin() as conn:
            for column in CONTRACT_COLUMNS:
                conn.exec_driver_sql(f"ALTER TABLE online_registrations DROP COLUMN {column}")
        before = contract.columns_of(engine)
        assert [one_line(s) for s in statements] == contract.upgrade_sql(engine.dialect.name, before)
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
        assert contract.found_version(contract.columns_of(engine)) == contract.CURRENT
    finally:
        engine.dispose()
