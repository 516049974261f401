"""Read-only snapshots of the accounts on the machine's OWN database servers (a hospital's production servers,
as far as this project is concerned): the project must never change them. Only SELECTs, nothing else.

KHANZA_SYNC_SYSTEM_MARIADB (host:port, default 127.0.0.1:3306, user root without password, or
KHANZA_SYNC_SYSTEM_MARIADB_USER/_PASSWORD) and KHANZA_SYNC_SYSTEM_POSTGRES_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/postgres) name them.
"""
from __future__ import annotations

import os

AT_SESSION_START: dict | None = None  # set by tests/conftest.py before the first test
SYSTEM_MARIADB = os.environ.get("KHANZA_SYNC_SYSTEM_MARIADB", "127.0.0.1:3306")
SYSTEM_POSTGRES_URL = os.environ.get("KHANZA_SYNC_SYSTEM_POSTGRES_URL",
                                     "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def mariadb_accounts() -> list[tuple]:
    """user, host, plugin, authentication string and the full privilege JSON of every account."""
    import pymysql

    host, port = SYSTEM_MARIADB.rsplit(":", 1)
    conn = pymysql.connect(host=host, port=int(port), user=os.environ.get("KHANZA_SYNC_SYSTEM_MARIADB_USER", "root"),
                           password=os.environ.get("KHANZA_SYNC_SYSTEM_MARIADB_PASSWORD", ""), connect_timeout=3)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT user, host, plugin, authentication_string FROM mysql.user ORDER BY user, host")
            users = [("user", *row) for row in cur.fetchall()]
            cur.execute("SELECT user, host, priv FROM mysql.global_priv ORDER BY user, host")
            return users + [("global_priv", *row) for row in cur.fetchall()]
    finally:
        conn.close()


def postgres_roles() -> list[tuple]:
    from sqlalchemy import create_engine, text

    engine = create_engine(SYSTEM_POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT rolname, rolpassword, rolsuper, rolcanlogin, rolcreatedb, rolcreaterole, rolvaliduntil "
                "FROM pg_authid ORDER BY rolname"))]
    finally:
        engine.dispose()


def snapshot() -> dict[str, object]:
    """{'mariadb': rows or the error text, 'postgres': rows or the error text}."""
    out: dict[str, object] = {}
    for name, read in (("mariadb", mariadb_accounts), ("postgres", postgres_roles)):
        try:
            out[name] = read()
        except Exception as error:  # noqa: BLE001  (absent or not readable: the caller decides)
            out[name] = f"unavailable: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
    return out
