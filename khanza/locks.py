"""The pipeline's own writers are serialised by one MariaDB named lock per Khanza database.

GET_LOCK is held by the connection, not by a transaction, and is released if the connection dies,
so a crashed run can never leave Khanza locked. Desk staff never take it: their max()+1 race is
handled in registration.py.
"""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import Connection, text

from khanza.db import KhanzaUnavailable
from khanza_sync.settings import Settings


def lock_name(db_name: str) -> str:
    """The named lock every pipeline writer of one Khanza database takes (`khanza_sync:<KHANZA_DB_NAME>`):
    hospitals sharing a MariaDB server never wait for each other."""
    return f"khanza_sync:{db_name}"


def writers_lock(conn: Connection, settings: Settings):
    """The pipeline's numbering lock for `settings`' Khanza database, with its configured timeout."""
    return numbering_lock(conn, lock_name(settings.khanza_db_name), settings.khanza_lock_timeout_seconds)


@contextmanager
def numbering_lock(conn: Connection, name: str, timeout_seconds: int):
    with conn.begin():
        got = conn.execute(text("SELECT GET_LOCK(:name, :timeout)"), {"name": name, "timeout": timeout_seconds}).scalar()
    if got != 1:
        raise KhanzaUnavailable(f"another writer held the numbering lock for {timeout_seconds}s")
    try:
        yield
    finally:
        try:
            with conn.begin():
                conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
        except Exception:  # connection gone: the server has released the lock already
            pass
