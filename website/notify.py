"""Waiting for new website registrations, for `khanza-sync follow` (khanza_sync/follow.py).

    waiter = open_waiter(engine, poll_seconds=1.0)   # ListenWaiter on PostgreSQL with the trigger, else PollWaiter
    waiter.wait(30)                                  # returns when a registration may have arrived, or after 30 s
    due_now(engine, now)                             # is any pending row due? (one indexed query, no claim)

PostgreSQL with the trigger of website/schema.py (`NOTIFY online_registrations` after each INSERT statement):
one dedicated autocommit connection LISTENs, and `wait` blocks on its socket until a notification or the
timeout. A LISTEN socket can go deaf without an error: a NAT or firewall that drops an idle connection, or a
proxy that stops forwarding, leaves it open and silent. So every PING_SECONDS of waiting the waiter sends
`SELECT 1`, which must answer within PING_TIMEOUT_SECONDS or the socket is shut down (store.StallGuard);
short TCP keepalives (store.KEEPALIVES) catch a dead peer at the kernel level too. A lost, deaf or refused
connection is survived: the waiter reconnects and LISTENs again with backoff (1 s .. 5 s), polling meanwhile,
and the website engine's pooled connections (made over the same broken path) are replaced. A reconnect
returns True, so the caller looks for due rows at once: notifications sent while deaf are lost, rows are not.

SQLite, MySQL/MariaDB (no NOTIFY there), or PostgreSQL without the trigger (a table made from older DDL): `wait`
sleeps `poll_seconds`, and the caller's `due_now` is the poll (an indexed EXISTS over the pending index: partial
on SQLite and PostgreSQL, (status, created_at) on MySQL).
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from sqlalchemy import Engine, func, literal, select, text

from website import schema
from website.store import KEEPALIVES, PING_TIMEOUT_SECONDS, StallGuard, due, status_is

log = logging.getLogger(__name__)
_t = schema.registrations

RECONNECT_MIN_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 5.0  # a website back after an outage is LISTENed to again within this long
SLICE_SECONDS = 1.0  # a stop request is seen within this long (the wait loops in slices; no query per slice)
PING_SECONDS = 2.0  # while waiting, check the LISTEN connection this often (one SELECT 1: ~30 round trips a minute)
_guard = StallGuard(PING_TIMEOUT_SECONDS)  # one watchdog thread for every waiter's pings


# ---------------------------------------------------------------- cheap reads the follow loop makes


def due_now(engine: Engine, now: datetime) -> bool:
    """Is a pending row due at `now` (never claimed, or its lease or backoff has ended)? One indexed EXISTS."""
    stmt = select(literal(1)).where(select(_t.c.id).where(status_is("pending"), due(now)).exists())
    with engine.connect() as conn:
        return conn.execute(stmt).first() is not None


def next_due(engine: Engine) -> datetime | None:
    """The earliest retry or lease end among pending rows (None: no pending row waits for a time)."""
    stmt = select(func.min(_t.c.next_attempt_at)).where(status_is("pending"))
    with engine.connect() as conn:
        value = conn.execute(stmt).scalar_one()
    if isinstance(value, str):  # SQLite stores text
        value = datetime.fromisoformat(value)
    return value


_TRIGGER_EXISTS = text(
    "SELECT 1 FROM pg_trigger WHERE tgname = :trigger AND tgrelid = to_regclass(:table) "
    "AND NOT tgisinternal AND tgenabled <> 'D'")


def has_trigger(engine: Engine) -> bool:
    """Does the website table have the notification trigger (PostgreSQL only; enabled)?"""
    if engine.dialect.name != "postgresql":
        return False
    with engine.connect() as conn:
        return conn.execute(_TRIGGER_EXISTS, {"trigger": schema.NOTIFY_TRIGGER,
                                              "table": schema.registrations.name}).first() is not None


# ---------------------------------------------------------------- waiters


class _Stoppable:
    def __init__(self, stop: threading.Event | None):
        self.stop = stop or threading.Event()

    def _sleep(self, seconds: float) -> None:
        self.stop.wait(max(0.0, seconds))

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PollWaiter(_Stoppable):
    """SQLite, MySQL/MariaDB, or no trigger: wake every `poll_seconds` (the caller's `due_now` is the poll)."""

    mode = "poll"

    def __init__(self, poll_seconds: float, stop: threading.Event | None = None):
        super().__init__(stop)
        self.poll_seconds = poll_seconds

    def wait(self, timeout: float) -> bool:
        self._sleep(min(timeout, self.poll_seconds))
        return False


class ListenWaiter(_Stoppable):
    """PostgreSQL with the trigger: LISTEN on a dedicated connection, wait on its socket."""

    mode = "listen"

    def __init__(self, engine: Engine, poll_seconds: float, stop: threading.Event | None = None,
                 connect_timeout: float = 5.0):
        super().__init__(stop)
        url = engine.url.set(drivername="postgresql")
        self._engine = engine
        self._conninfo = url.render_as_string(hide_password=False)
        self.poll_seconds = poll_seconds
        self.connect_timeout = connect_timeout
        self._conn = None
        self._retry_at = 0.0
        self._backoff = RECONNECT_MIN_SECONDS
        self._ping_at = 0.0
        self._failing = False  # in a run of failed (re)connects: warn once, then quietly retry
        self.connects = 0  # how many times LISTEN was (re-)established
        self.disconnects = 0
        self.notifications = 0
        self.pings = 0
        self._connect()

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def _connect(self) -> bool:
        import psycopg
        from psycopg import sql

        conn = None
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=max(1, round(self.connect_timeout)),
                                   application_name="khanza-sync follow", **KEEPALIVES)
            # LISTEN too gets a deadline: a path that accepts connections but forwards nothing must not hang here
            _guard.call(conn.fileno(), PING_TIMEOUT_SECONDS, conn.execute,
                        sql.SQL("LISTEN {}").format(sql.Identifier(schema.NOTIFY_CHANNEL)))
        except Exception as error:  # noqa: BLE001 - the website database is away: poll, retry later
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
            (log.debug if self._failing else log.warning)(
                "LISTEN %s failed (%s); polling, retrying every %.0f s at most", schema.NOTIFY_CHANNEL,
                type(error).__name__, RECONNECT_MAX_SECONDS)
            self._failing = True
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, RECONNECT_MAX_SECONDS)
            return False
        self._conn = conn
        self._failing = False
        self._backoff = RECONNECT_MIN_SECONDS
        self._ping_at = time.monotonic() + PING_SECONDS
        self.connects += 1
        if self.connects > 1:
            log.info("LISTEN %s re-established", schema.NOTIFY_CHANNEL)
        return True

    def _drop(self, error: Exception) -> None:
        how = "went silent" if getattr(error, "khanza_sync_stalled_after", None) else "lost"
        log.warning("LISTEN connection %s (%s); reconnecting", how, type(error).__name__)
        self.disconnects += 1
        self.close()
        # The website engine's pooled connections went over the same path: replace them rather than let each
        # one's first use find out (a silent one costs a pre-ping timeout each).
        self._engine.dispose()
        self._retry_at = time.monotonic()  # at once; the backoff starts if that fails

    def wait(self, timeout: float) -> bool:
        """Block until a notification (True), the timeout or a stop request (False). While the connection is
        down this polls (`poll_seconds`) and reconnects with backoff; a reconnect returns True (re-check)."""
        deadline = time.monotonic() + max(0.0, timeout)
        while not self.stop.is_set():
            remaining = deadline - time.monotonic()
            if not self.connected:
                if time.monotonic() >= self._retry_at:
                    if self._connect():
                        return True  # notifications may have been missed meanwhile
                self._sleep(min(remaining, self.poll_seconds, max(0.05, self._retry_at - time.monotonic())))
                return False
            if remaining <= 0:
                return False
            try:
                if time.monotonic() >= self._ping_at:
                    self._ping()  # a notification that arrives meanwhile waits in psycopg's backlog
                got = False
                slice_ = min(remaining, SLICE_SECONDS, max(0.0, self._ping_at - time.monotonic()))
                for _ in self._conn.notifies(timeout=slice_, stop_after=1):
                    got = True
                if got:
                    self.notifications += 1
                    for _ in self._conn.notifies(timeout=0):  # a burst of inserts is one wake-up
                        self.notifications += 1
                    return True
            except Exception as error:  # noqa: BLE001 - dropped, deaf or restarted: reconnect, then re-check
                self._drop(error)
                if self._connect():
                    return True
        return False

    def _ping(self) -> None:
        """One `SELECT 1` that must answer within PING_TIMEOUT_SECONDS (else the socket is shut down and this
        raises): catches a terminated backend and a connection that went silent."""
        self._ping_at = time.monotonic() + PING_SECONDS
        self.pings += 1
        _guard.call(self._conn.fileno(), PING_TIMEOUT_SECONDS, self._conn.execute, "SELECT 1")

    def ping(self) -> None:
        """Check the LISTEN connection now (the waiter also does this every PING_SECONDS while it waits)."""
        if self.connected:
            try:
                self._ping()
            except Exception as error:  # noqa: BLE001
                self._drop(error)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001
                pass
            self._conn = None


def open_waiter(engine: Engine, poll_seconds: float, stop: threading.Event | None = None
                ) -> ListenWaiter | PollWaiter:
    """LISTEN where the trigger exists (PostgreSQL), else a poll every `poll_seconds`."""
    try:
        listen = has_trigger(engine)
    except Exception as error:  # noqa: BLE001 - the database is away now: poll, the loop backs off
        log.warning("could not look for the notification trigger (%s); polling", type(error).__name__)
        listen = False
    return ListenWaiter(engine, poll_seconds, stop) if listen else PollWaiter(poll_seconds, stop)
