"""Khanza engines and the line between transient and permanent database errors."""
from __future__ import annotations

import logging

from sqlalchemy import Connection, Engine, create_engine, event, exc, text

from khanza_sync.settings import Settings

# MariaDB/PyMySQL error numbers worth a retry: too many connections (1040), server shutdown (1053),
# lock wait timeout (1205), deadlock (1213), connection killed (1927), can't connect (2003),
# server gone away (2006), lost connection (2013), lost during query (2055), client timeout (4031).
TRANSIENT_CODES = frozenset({1040, 1053, 1205, 1213, 1927, 2003, 2006, 2013, 2055, 4031})
# STRICT mode so a value Khanza's columns cannot hold fails loudly instead of being truncated.
SESSION_INIT = "SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'"


log = logging.getLogger(__name__)


class KhanzaUnavailable(Exception):
    """Khanza could not be reached or did not answer in time (always transient)."""


def make_engine(settings: Settings, database: str | None = None) -> Engine:
    """A Khanza engine bounded by PyMySQL's connect/read/write timeouts (a stalled server fails the call, it
    never hangs a run). Its errors are tagged `khanza_sync_database = "khanza"` for khanza_sync.checkup.explain."""
    engine = create_engine(
        settings.khanza_url(database),
        hide_parameters=True,  # bound values are patient data: keep them out of error text
        pool_pre_ping=True,
        pool_recycle=1800,
        # Each registration's max()+1 must see what the desk committed a moment ago.
        isolation_level="READ COMMITTED",
        connect_args={
            "connect_timeout": settings.khanza_connect_timeout,
            "read_timeout": settings.khanza_read_timeout,
            "write_timeout": settings.khanza_write_timeout,
            "init_command": SESSION_INIT,
        },
    )

    @event.listens_for(engine, "handle_error")
    def _tag(context):
        for error in (context.original_exception, context.sqlalchemy_exception):
            if error is not None:
                error.khanza_sync_database = "khanza"

    log.info("Khanza database %s at %s:%s as %s (timeouts: connect %ss, read %ss, write %ss)",
             database or settings.khanza_db_name, settings.khanza_db_host, settings.khanza_db_port,
             settings.khanza_db_user, settings.khanza_connect_timeout, settings.khanza_read_timeout,
             settings.khanza_write_timeout)
    return engine


def answers(engine: Engine) -> bool:
    """Does Khanza answer now? One connect (or pooled pre-ping) and `SELECT 1`: no batch, no write slot, no
    lock. Bounded by the engine's connect and read timeouts. For the follow loop while Khanza is offline."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return True
    except Exception as error:  # noqa: BLE001 - only "not now" is an answer here
        if is_transient(error):
            return False
        raise


def missing_tables(conn: Connection, names) -> list[str]:
    """Which of `names` the connected database lacks (information_schema: only what the user may see)."""
    found = {r[0].lower() for r in conn.execute(
        text("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"))}
    return [n for n in names if n.lower() not in found]


def missing_columns(conn: Connection, table: str, columns) -> list[str]:
    found = {r[0].lower() for r in conn.execute(
        text("SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
             "AND table_name = :t"), {"t": table})}
    return [c for c in columns if c.lower() not in found]


def mysql_code(error: BaseException) -> int | None:
    orig = getattr(error, "orig", error)
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_transient(error: BaseException) -> bool:
    """True for errors a later attempt can cure; integrity and data errors are never transient."""
    if isinstance(error, KhanzaUnavailable):
        return True
    if isinstance(error, (exc.IntegrityError, exc.DataError, exc.ProgrammingError)):
        return False
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, (exc.OperationalError, exc.InterfaceError, exc.DisconnectionError)):
        code = mysql_code(error)
        return code is None or code in TRANSIENT_CODES or isinstance(error, exc.InterfaceError)
    return isinstance(error, (ConnectionError, TimeoutError))
