"""Never touch what the project did not create: the one place that decides whether a database may be
dropped, recreated or emptied, and that marks the databases the project creates.

- MariaDB (Khanza side): a database the project creates holds the table `khanza_sync_owned` (one row: who,
  when, what for). Dropping, recreating or emptying an existing database without it is refused.
- PostgreSQL: `COMMENT ON DATABASE name IS 'created by khanza-sync ...'`.
- SQLite website stores: the same `khanza_sync_owned` table inside the file. A file that does not exist yet
  is free to create. MySQL/MariaDB website stores: the `khanza_sync_owned` table in their database.

Creating a new database is always allowed. A refusal is `NotOwned`, a `SystemExit` whose message is one line
naming the database and why, so every command line entry point exits non-zero with that line (and tests
can catch it).

    python -m khanza_sync.ownership ensure-postgres-db NAME   # a marked database on the private PostgreSQL
"""
from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Connection, create_engine, inspect, make_url, text

MARKER_TABLE = "khanza_sync_owned"
MARKER_PREFIX = "created by khanza-sync"


class NotOwned(SystemExit):
    """Refused: the database exists and was not created by Khanza Sync."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _refuse(what: str, action: str, why: str) -> NotOwned:
    return NotOwned(f"refused to {action} {what}: {why}; Khanza Sync only drops, recreates or empties "
                    f"databases it created itself")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


# ---------------------------------------------------------------------------------------------- MariaDB

def _mariadb_where(conn: Connection, name: str) -> str:
    url = conn.engine.url
    return f"MariaDB database '{name}' on {url.host}:{url.port or 3306}"


def mariadb_database_exists(conn: Connection, name: str) -> bool:
    return conn.execute(text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :n"),
                        {"n": name}).first() is not None


def mariadb_owned(conn: Connection, name: str) -> bool:
    return conn.execute(text("SELECT 1 FROM information_schema.tables WHERE table_schema = :n AND table_name = :t"),
                        {"n": name, "t": MARKER_TABLE}).first() is not None


def check_mariadb_replaceable(conn: Connection, name: str, action: str = "drop and recreate") -> bool:
    """Refuse (NotOwned) unless `name` is absent or carries the marker. Returns whether it exists."""
    if not mariadb_database_exists(conn, name):
        return False
    if not mariadb_owned(conn, name):
        raise _refuse(_mariadb_where(conn, name), action, f"it has no {MARKER_TABLE} table")
    return True


def require_mariadb_owned(conn: Connection, name: str, action: str = "empty") -> None:
    """Refuse (NotOwned) unless `name` exists and carries the marker (before DELETEs on its tables)."""
    if not mariadb_owned(conn, name):
        raise _refuse(_mariadb_where(conn, name), action, f"it has no {MARKER_TABLE} table")


def mark_mariadb(conn: Connection, name: str, purpose: str) -> None:
    """Mark the database `name` (just created by the project) as the project's."""
    conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS `{name}`.`{MARKER_TABLE}` (created_by varchar(40) NOT NULL, "
                         "created_at datetime NOT NULL, purpose varchar(200) NOT NULL)")
    conn.execute(text(f"INSERT INTO `{name}`.`{MARKER_TABLE}` VALUES ('khanza-sync', :at, :purpose)"),
                 {"at": _now(), "purpose": purpose[:200]})


def ensure_mariadb_database(conn: Connection, name: str, purpose: str, charset: str = "utf8mb4") -> None:
    """The database `name` on `conn`'s server (autocommit): created and marked when absent, reused when it is the
    project's, refused (NotOwned) when it exists unmarked."""
    if not check_mariadb_replaceable(conn, name, "use"):
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET {charset}")
        mark_mariadb(conn, name, purpose)


def recreate_mariadb_database(conn: Connection, name: str, purpose: str, charset: str = "latin1") -> None:
    """Drop (only if the project's) and create `name`, marked. `conn` is a server connection (autocommit)."""
    if check_mariadb_replaceable(conn, name):
        conn.exec_driver_sql(f"DROP DATABASE `{name}`")
    conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET {charset}")
    mark_mariadb(conn, name, purpose)


# ---------------------------------------------------------------------------------------------- PostgreSQL

def _pg_where(conn: Connection, name: str) -> str:
    url = conn.engine.url
    return f"PostgreSQL database '{name}' on {url.host}:{url.port or 5432}"


def postgres_comment(conn: Connection, name: str) -> str | None:
    """None when the database does not exist, else its comment ('' without one)."""
    row = conn.execute(text("SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database "
                            "WHERE datname = :n"), {"n": name}).first()
    return None if row is None else row[0]


def postgres_owned(conn: Connection, name: str) -> bool:
    return (postgres_comment(conn, name) or "").startswith(MARKER_PREFIX)


def ensure_postgres_database(admin_url: str, name: str, purpose: str) -> str:
    """The database `name` at `admin_url`'s server: created and marked when absent, reused when it is the
    project's, refused (NotOwned) when it exists unmarked. Returns the database's URL (same driver)."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            comment = postgres_comment(conn, name)
            if comment is None:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
                conn.exec_driver_sql(f"COMMENT ON DATABASE \"{name}\" IS '{MARKER_PREFIX} {_now()} UTC: "
                                     f"{purpose.replace(chr(39), '')}'")
            elif not comment.startswith(MARKER_PREFIX):
                raise _refuse(_pg_where(conn, name), "use", "it has no 'created by khanza-sync' comment")
    finally:
        engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _pg_store_owned(url: str) -> tuple[bool, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            name = conn.execute(text("SELECT current_database()")).scalar_one()
            return postgres_owned(conn, name), _pg_where(conn, name)
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------- website stores

def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    database = parsed.database
    return Path(database) if database and database != ":memory:" else None


def _sqlite_owned(path: Path) -> bool:
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                            (MARKER_TABLE,)).fetchone() is not None
    except sqlite3.DatabaseError:
        return False
    finally:
        conn.close()


def check_website_replaceable(url: str, action: str = "drop and recreate the website tables of") -> None:
    """Refuse (NotOwned) unless the website database at `url` is absent (SQLite) or the project's."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        path = _sqlite_path(url)
        if path is not None and path.exists() and not _sqlite_owned(path):
            raise _refuse(f"SQLite website database '{path}'", action,
                          f"it has no {MARKER_TABLE} table (delete the file yourself if it is an old demo file)")
    elif backend == "postgresql":
        owned, where = _pg_store_owned(url)
        if not owned:
            raise _refuse(where, action, "it has no 'created by khanza-sync' comment")
    elif backend in ("mysql", "mariadb"):
        from website import store

        engine = store.make_engine(url)
        try:
            with engine.connect() as conn:
                name = conn.execute(text("SELECT DATABASE()")).scalar_one()
                if not mariadb_owned(conn, name):
                    raise _refuse(_mariadb_where(conn, name).replace("MariaDB", "MySQL/MariaDB website"), action,
                                  f"it has no {MARKER_TABLE} table")
        finally:
            engine.dispose()
    else:
        raise _refuse(f"the {backend} website database at {make_url(url).render_as_string()}", action,
                      "only SQLite, PostgreSQL and MySQL/MariaDB stores can carry Khanza Sync's marker")


def mark_website_store(url: str, purpose: str) -> None:
    """Mark a website database the project just created (SQLite, MySQL/MariaDB: the marker table; PostgreSQL: the
    comment)."""
    from website import store

    backend = make_url(url).get_backend_name()
    engine = store.make_engine(url) if backend in ("mysql", "mariadb") else create_engine(url)
    try:
        with engine.begin() as conn:
            if backend == "postgresql":
                name = conn.execute(text("SELECT current_database()")).scalar_one()
                if not postgres_owned(conn, name):
                    conn.exec_driver_sql(f"COMMENT ON DATABASE \"{name}\" IS '{MARKER_PREFIX} {_now()} UTC: "
                                         f"{purpose.replace(chr(39), '')}'")
            elif not inspect(conn).has_table(MARKER_TABLE):
                conn.exec_driver_sql(f"CREATE TABLE {MARKER_TABLE} (created_by varchar(40) NOT NULL, "
                                     "created_at varchar(40) NOT NULL, purpose varchar(200) NOT NULL)")
                conn.execute(text(f"INSERT INTO {MARKER_TABLE} VALUES ('khanza-sync', :at, :purpose)"),
                             {"at": _now(), "purpose": purpose[:200]})
    finally:
        engine.dispose()


def fresh_website_store(url: str, purpose: str) -> str:
    """A website database at `url` with empty website tables from the shipped DDL, marked as the project's:
    a SQLite file is deleted and made again, a PostgreSQL or MySQL/MariaDB database has online_registrations
    dropped and made again. Refused (NotOwned) when `url` holds a database the project did not create."""
    from website import store

    check_website_replaceable(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite" and (path := _sqlite_path(url)) is not None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        mark_website_store(url, purpose)
    engine = store.make_engine(url)
    try:
        if backend != "sqlite":
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP TABLE IF EXISTS online_registrations")
                conn.exec_driver_sql("DROP TABLE IF EXISTS khanza_sync_contract")  # website/contract.py's record
        store.create_schema(engine)
    finally:
        engine.dispose()
    return url


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "ensure-postgres-db":
        from khanza_sync import localdb

        url = ensure_postgres_database(localdb.coordinates().postgres_admin_url, args[1], "khanza-sync trial")
        print(make_url(url).render_as_string())
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
