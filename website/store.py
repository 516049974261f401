"""The website's `online_registrations` table: the only code that reads or writes it.

Claiming uses `next_attempt_at` as a lease: a claimed row is pushed `claim_lease_seconds` into the
future, so an overlapping run (or a second worker) cannot see it; a run that dies leaves rows that
become visible again when the lease ends, and the Khanza ledger stops them from being made twice.

How a claim is made depends on the database (`claim_method`): PostgreSQL and SQLite in one UPDATE ... RETURNING;
MySQL/MariaDB, which have no UPDATE ... RETURNING, in one transaction that locks its rows first: with
SELECT ... FOR UPDATE SKIP LOCKED where the server has it (MariaDB 10.6+, MySQL 8.0.1+), else by stamping a
fresh token into `claim_token` with UPDATE ... ORDER BY ... LIMIT n and reading the rows back by it.

The table is defined once in website/schema.py; every statement here is built from it with SQLAlchemy Core.
"""
from __future__ import annotations

import itertools
import math
import os
import socket
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import (
    Column, ColumnElement, Engine, and_, bindparam, case, create_engine, event, func, literal, null, or_, select, update,
)
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import Update
from sqlalchemy.sql.visitors import replacement_traverse

from khanza_sync import regions
from khanza_sync.error_codes import ErrorCode
from website import schema

TABLE = schema.registrations.name
INPUT_COLUMNS = [
    "id", "created_at", "nik", "full_name", "birth_date", "gender", "phone", "address",
    "birth_place", "mother_name", "email", "poliklinik", "doctor", "visit_date", "payment",
    "bpjs_number", "local_queue_number", "attempts", *regions.CONTRACT_COLUMNS,
]
_t = schema.registrations
# Per engine: the optional contract columns (website/contract.py) a table made before them still lacks.
# A table made from older DDL is read as it is, the missing columns as NULL, so the website can upgrade it when it
# chooses (docs/website.md). Read once per engine: a run (or a follow worker) sees an upgrade from its next start.
_LACKING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def lacking(engine: Engine) -> frozenset[str]:
    """The optional contract columns (website/contract.py) the engine's table lacks."""
    from website import contract  # contract builds on this module's schema; imported late

    if engine not in _LACKING:
        present = contract.columns_of(engine)
        _LACKING[engine] = frozenset(contract.optional_missing(present) if present is not None else ())
    return _LACKING[engine]


def readable(engine: Engine, columns: list[str]) -> list[str]:
    """`columns` less those the engine's table lacks."""
    missing = lacking(engine)
    return [c for c in columns if c not in missing]


def padded(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """`df` with every one of `columns` (those the table lacks as None), in that order."""
    for column in columns:
        if column not in df.columns:
            df[column] = None
    return df[columns]


def make_engine(url: str, *, connect_timeout: float = 10, statement_timeout: float = 30) -> Engine:
    """An engine whose errors never echo bound values (they can be patient data), and that cannot hang a run.

    `connect_timeout` and `statement_timeout` (seconds) are WEBSITE_CONNECT_TIMEOUT and
    WEBSITE_STATEMENT_TIMEOUT_SECONDS (tasks/resources.py `website_engine` passes them from Settings):
    - SQLite: a statement waits at most `statement_timeout` for another writer's lock (busy timeout), then
      fails with "database is locked".
    - PostgreSQL: psycopg's `connect_timeout`; the server cancels a statement running longer than
      `statement_timeout` (`-c statement_timeout`); and since neither helps when the network itself stalls
      (libpq has no read timeout), a call still unanswered `connect_timeout` seconds after that has its
      connection shut down by a watchdog (`StallGuard`): it fails at once instead of hanging. A pool pre-ping
      (the one round trip before a pooled connection is reused) gets only PING_TIMEOUT_SECONDS, so a connection
      a NAT or firewall silently dropped is replaced in seconds, not after the statement bound. TCP keepalives
      (`KEEPALIVES`) make the kernel notice a dead peer of an idle connection by itself.
    - MySQL/MariaDB (`mysql+pymysql://`; a bare `mysql://` or `mariadb://` gets PyMySQL too): see `_mysql_engine`.
    Errors are tagged `khanza_sync_database = "website"` for khanza_sync.checkup.explain (the driver's error, with
    its number, stays the SQLAlchemy error's `.orig`: nothing here rewraps it).
    """
    if url.startswith("sqlite"):
        if "///" in url and ":memory:" not in url:
            Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        # sqlite3's `timeout` is SQLite's busy timeout: how long a statement waits for another writer's lock
        engine = create_engine(url, hide_parameters=True, connect_args={"timeout": statement_timeout})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # WAL lets the website read while we write
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

    elif make_url(url).get_backend_name() == "postgresql":
        options = make_url(url).query.get("options")
        options = " ".join([*([options] if isinstance(options, str) else options or []),
                            f"-c statement_timeout={int(statement_timeout * 1000)}"])
        engine = create_engine(url, hide_parameters=True, pool_pre_ping=True,
                               connect_args={"connect_timeout": max(1, round(connect_timeout)), "options": options,
                                             **KEEPALIVES})
        StallGuard(statement_timeout + connect_timeout, ping_seconds=PING_TIMEOUT_SECONDS).install(engine)
    elif make_url(url).get_backend_name() in ("mysql", "mariadb"):
        engine = _mysql_engine(url, connect_timeout, statement_timeout)
    else:
        engine = create_engine(url, hide_parameters=True, pool_pre_ping=True)

    @event.listens_for(engine, "handle_error")
    def _tag(context):  # which database an error came from, for the one-line explanations
        for error in (context.original_exception, context.sqlalchemy_exception):
            if error is not None:
                error.khanza_sync_database = "website"

    return engine


# A silently dropped connection (NAT, firewall, a proxy that stops forwarding) must be noticed in seconds:
# TCP keepalives after 5 s idle, every 2 s, 3 unanswered = dead (libpq parameters; `tcp_user_timeout` also
# bounds unacknowledged writes), and a pre-ping (a trivial round trip) that gets PING_TIMEOUT_SECONDS at most.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3,
              "tcp_user_timeout": 10_000}
PING_TIMEOUT_SECONDS = 2.0

_MARIADB_SESSION = ("SET time_zone = '+00:00', SESSION max_statement_time = %s, "  # seconds
                    "SESSION innodb_lock_wait_timeout = %s")
_MYSQL_SESSION = ("SET time_zone = '+00:00', SESSION max_execution_time = %s, "  # milliseconds, SELECTs
                  "SESSION innodb_lock_wait_timeout = %s")


def _mysql_engine(url: str, connect_timeout: float, statement_timeout: float) -> Engine:
    """MySQL/MariaDB through PyMySQL:
    - every session in UTC (`time_zone = '+00:00'`): DATETIME columns are stored as given anyway, and a website's
      own TIMESTAMP columns (a Laravel table) then read and write as UTC too;
    - READ COMMITTED: the claim's locking reads lock only the rows they take (no gap locks that would hold up the
      website's INSERTs), and every statement sees what others committed;
    - utf8mb4 unless the URL names a charset;
    - the server ends a statement after `statement_timeout` (MariaDB `max_statement_time`, MySQL
      `max_execution_time`, which covers SELECTs) and a lock wait after it (`innodb_lock_wait_timeout`); PyMySQL's
      read and write timeouts (`statement_timeout + connect_timeout`) end a call the network left unanswered,
      except a pool pre-ping, which gets PING_TIMEOUT_SECONDS (a silently dropped connection is replaced fast)."""
    parsed = make_url(url)
    if "+" not in parsed.drivername:  # mysql:// or mariadb://: the driver the project installs
        parsed = parsed.set(drivername=f"{parsed.drivername}+pymysql")
    guard = statement_timeout + connect_timeout
    connect_args = {"connect_timeout": max(1, round(connect_timeout)), "read_timeout": guard, "write_timeout": guard}
    if "charset" not in parsed.query:
        connect_args["charset"] = "utf8mb4"
    engine = create_engine(parsed, hide_parameters=True, pool_pre_ping=True, pool_recycle=1800,
                           isolation_level="READ COMMITTED", connect_args=connect_args)

    lock_wait = max(1, math.ceil(statement_timeout))
    _cap_mysql_ping(engine, PING_TIMEOUT_SECONDS)

    @event.listens_for(engine, "connect")
    def _session(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        try:
            if "mariadb" in dbapi_conn.get_server_info().lower():
                cur.execute(_MARIADB_SESSION, (statement_timeout, lock_wait))
            else:
                cur.execute(_MYSQL_SESSION, (max(1, round(statement_timeout * 1000)), lock_wait))
        finally:
            cur.close()

    return engine


def _cap_mysql_ping(engine: Engine, seconds: float) -> None:
    """PyMySQL reads with the connection's read timeout; a pre-ping gets `seconds` instead (this engine only)."""
    ping = engine.dialect.do_ping

    def do_ping(dbapi_conn):
        saved = getattr(dbapi_conn, "_read_timeout", None)  # PyMySQL's per-read socket timeout
        dbapi_conn._read_timeout = min(seconds, saved or seconds)
        try:
            return ping(dbapi_conn)
        finally:
            dbapi_conn._read_timeout = saved

    engine.dialect.do_ping = do_ping


class StallGuard:
    """A client-side bound on every PostgreSQL round trip (statements, commits, rollbacks, pre-pings).

    Past its deadline the call's socket is shut down (not closed: libpq still owns the descriptor), so the
    blocked call returns at once with OperationalError, SQLAlchemy invalidates that connection, and the error
    carries `khanza_sync_stalled_after` (seconds). One daemon thread per engine sleeps until the next deadline."""

    CALLS = ("do_execute", "do_executemany", "do_execute_no_params", "do_commit", "do_rollback", "do_ping")

    def __init__(self, seconds: float, ping_seconds: float | None = None):
        self.seconds = seconds
        self.ping_seconds = min(seconds, ping_seconds or seconds)
        self._deadlines: dict[int, tuple[float, int]] = {}  # call number -> (deadline, socket descriptor)
        self._fired: set[int] = set()
        self._calls = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def install(self, engine: Engine) -> None:
        for name in self.CALLS:  # the engine's own dialect instance: no other engine is affected
            seconds = self.ping_seconds if name == "do_ping" else self.seconds
            setattr(engine.dialect, name, self._guarded(getattr(engine.dialect, name), seconds))

    def _guarded(self, call, seconds: float):
        def guarded(target, *args, **kwargs):
            try:  # `target` is a connection (commit, rollback, ping) or a cursor (execute)
                fileno = target.fileno() if hasattr(target, "fileno") else target.connection.fileno()
            except Exception:  # noqa: BLE001 - closed already: nothing to guard, let the driver say so
                return call(target, *args, **kwargs)
            return self.call(fileno, seconds, call, target, *args, **kwargs)
        return guarded

    def call(self, fileno: int, seconds: float, call, *args, **kwargs):
        """`call(*args, **kwargs)`, with the socket `fileno` shut down if it has not returned after `seconds`
        (its error then carries `khanza_sync_stalled_after`). Also for connections outside an engine (LISTEN)."""
        token = self._arm(fileno, seconds)
        try:
            return call(*args, **kwargs)
        except Exception as error:
            if self._disarm(token):
                error.khanza_sync_stalled_after = seconds
            raise
        finally:
            self._disarm(token)

    def _arm(self, fileno: int, seconds: float) -> int:
        with self._wake:
            token = next(self._calls)
            self._deadlines[token] = (time.monotonic() + seconds, fileno)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="website-stall-guard", daemon=True)
                self._thread.start()
            self._wake.notify()
        return token

    def _disarm(self, token: int) -> bool:
        """Stop watching `token`; True if the guard fired for it."""
        with self._wake:
            self._deadlines.pop(token, None)
            fired = token in self._fired
            self._fired.discard(token)
            return fired

    def _watch(self) -> None:
        with self._wake:
            while True:
                if not self._deadlines:
                    self._wake.wait()
                    continue
                token, (deadline, fileno) = min(self._deadlines.items(), key=lambda item: item[1][0])
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    self._wake.wait(remaining)
                    continue
                del self._deadlines[token]
                self._fired.add(token)
                try:
                    _shutdown(fileno)
                except OSError:
                    pass


def _shutdown(fileno: int) -> None:
    """Shut a socket down through a duplicate of its descriptor (the owner's descriptor stays valid)."""
    sock = socket.socket(fileno=os.dup(fileno))
    try:
        sock.shutdown(socket.SHUT_RDWR)
    finally:
        sock.close()


def create_schema(engine: Engine) -> None:
    schema.create(engine, schema.REGISTRATION_TABLES)


def status_is(status: str) -> ColumnElement[bool]:
    """`status = '<status>'` with the value written into the SQL, not bound: PostgreSQL
    can then use the partial index (WHERE status = 'pending') even for a prepared statement."""
    return _t.c.status == literal(status, literal_execute=True)


def due(now) -> ColumnElement[bool]:
    """Rows without a retry time (or lease), or whose retry time has come at `now`."""
    return or_(_t.c.next_attempt_at.is_(None), _t.c.next_attempt_at <= now)


def frame(rows, columns: list[str]) -> pd.DataFrame:
    """Result rows as they came from the driver (object columns, no type guessing)."""
    return pd.DataFrame([tuple(r) for r in rows], columns=columns, dtype=object)


def claim_statement(limit: int, now: datetime, lease_seconds: int, *conditions, columns: list[str] = INPUT_COLUMNS):
    """UPDATE ... WHERE id IN (SELECT id ... ORDER BY created_at, id LIMIT n FOR UPDATE SKIP LOCKED)
    RETURNING INPUT_COLUMNS: due pending rows matching `conditions`, oldest first, leased until now + lease.

    PostgreSQL: FOR UPDATE SKIP LOCKED so concurrent runs take disjoint rows. SQLite (where SQLAlchemy
    leaves the lock clause out): the single UPDATE statement is atomic and SQLite serialises writers.
    MySQL/MariaDB refuse a LIMIT inside IN (...): `claim` takes another way there.
    """
    oldest = (select(_t.c.id).where(status_is("pending"), due(now), *conditions)
              .order_by(_t.c.created_at, _t.c.id).limit(limit).with_for_update(skip_locked=True))
    return (update(_t).where(_t.c.id.in_(oldest))
            .values(_lease(now, lease_seconds))
            .returning(*[_t.c[c] for c in columns]))


def _lease(now: datetime, lease_seconds: int, table=_t) -> dict:
    """SET values of a claim: hidden from other runs until the lease ends, one more attempt."""
    return dict(next_attempt_at=now + timedelta(seconds=lease_seconds), attempts=table.c.attempts + 1)


def is_mysql(dialect: Dialect) -> bool:
    return schema.family(dialect.name) == "mysql"


def claim_method(dialect: Dialect) -> str:
    """How `claim` takes rows on this (connected) database: `returning` (PostgreSQL, SQLite), `skip_locked`
    (MariaDB 10.6+, MySQL 8.0.1+) or `token` (older MySQL/MariaDB: needs the claim_token column)."""
    if not is_mysql(dialect):
        return "returning"
    version = tuple(v for v in dialect.server_version_info or () if isinstance(v, int))
    return "skip_locked" if version >= ((10, 6) if dialect.is_mariadb else (8, 0, 1)) else "token"


class _OrderedUpdate(Update):
    """UPDATE ... ORDER BY ... LIMIT n, which MySQL and MariaDB have (SQLAlchemy Core writes no ORDER BY there)."""

    inherit_cache = False  # carries its own ORDER BY and LIMIT: never served from the statement cache

    def __init__(self, table, order_by, limit: int):
        super().__init__(table)
        self.ks_order_by, self.ks_limit = tuple(order_by), int(limit)


@compiles(_OrderedUpdate, "mysql")
@compiles(_OrderedUpdate, "mariadb")
def _ordered_update(element, compiler, **kw):
    order = ", ".join(compiler.process(column, **kw) for column in element.ks_order_by)
    return f"{compiler.visit_update(element, **kw)} ORDER BY {order} LIMIT {element.ks_limit}"


_tm = schema.mysql_table(_t)  # with claim_token


def _on_mysql_table(clause):
    """`clause` (built on the shared table) with its columns taken from the MySQL table, which has claim_token."""
    return replacement_traverse(
        clause, {}, lambda e: _tm.c[e.name] if isinstance(e, Column) and e.table is _t else None)


def _claim_rows(conn: Connection, limit: int, now: datetime, lease_seconds: int, conditions,
                columns: list[str] = INPUT_COLUMNS) -> list:
    method = claim_method(conn.dialect)
    if method == "returning":
        return conn.execute(claim_statement(limit, now, lease_seconds, *conditions, columns=columns)).fetchall()
    wanted = [status_is("pending"), due(now), *conditions]
    if method == "skip_locked":  # lock the oldest due rows no other run holds, lease them, read them
        ids = list(conn.execute(select(_t.c.id).where(*wanted).order_by(_t.c.created_at, _t.c.id).limit(limit)
                                .with_for_update(skip_locked=True)).scalars())
        if not ids:
            return []
        conn.execute(update(_t).where(_t.c.id.in_(ids)).values(_lease(now, lease_seconds)))
        return conn.execute(select(*[_t.c[c] for c in columns]).where(_t.c.id.in_(ids))).fetchall()
    # token: a concurrent claim waits on the rows this UPDATE locks, then finds them leased (not due) and moves on
    token = uuid.uuid4().hex
    stamp = _OrderedUpdate(_tm, [_tm.c.created_at, _tm.c.id], limit)
    conn.execute(stamp.where(*[_on_mysql_table(c) for c in wanted])
                 .values({**_lease(now, lease_seconds, _tm), schema.CLAIM_TOKEN: token}))
    return conn.execute(select(*[_tm.c[c] for c in columns])
                        .where(_on_mysql_table(status_is("pending")), _tm.c[schema.CLAIM_TOKEN] == token)).fetchall()


def claim(engine: Engine, limit: int, now: datetime, lease_seconds: int, *conditions) -> pd.DataFrame:
    """Take up to `limit` due pending rows matching `conditions`, oldest first, and lease them to this run."""
    columns = readable(engine, INPUT_COLUMNS)
    with engine.begin() as conn:
        rows = _claim_rows(conn, limit, now, lease_seconds, conditions, columns)
    df = padded(frame(rows, columns), INPUT_COLUMNS)  # RETURNING gives no order
    return df.sort_values(["created_at", "id"], kind="stable", key=lambda s: s.astype(str)).reset_index(drop=True)


def claim_pending(engine: Engine, limit: int, now: datetime, lease_seconds: int) -> pd.DataFrame:
    """Take up to `limit` due pending rows, oldest first, and lease them to this run (see `claim_statement`)."""
    return claim(engine, limit, now, lease_seconds)


def count_due(engine: Engine, now: datetime) -> int:
    stmt = select(func.count()).select_from(_t).where(status_is("pending"), due(now))
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


TOO_MANY_ATTEMPTS = ErrorCode.TOO_MANY_ATTEMPTS.value


@dataclass(frozen=True)
class QueueStatus:
    """The website queue at one moment (counts and error codes only; a missing error code is None).

    `deferred_by_code`: pending rows not due yet (a retry time, or the lease of a sync running now) by their
    last error code. `rejected_today_by_code`: rows rejected since the start of the hospital day (their
    synced_at). TOO_MANY_ATTEMPTS: rejected with it (all time, today), and pending rows flagged with it."""

    now: datetime
    day_start: datetime
    pending: int = 0
    due_now: int = 0
    oldest_pending_created_at: datetime | None = None
    deferred_by_code: dict[str | None, int] = field(default_factory=dict)
    rejected_today_by_code: dict[str | None, int] = field(default_factory=dict)
    too_many_attempts_rejected: int = 0
    too_many_attempts_rejected_today: int = 0
    too_many_attempts_pending: int = 0
    cancel_requested: int = 0

    @property
    def deferred(self) -> int:
        return self.pending - self.due_now

    @property
    def rejected_today(self) -> int:
        return sum(self.rejected_today_by_code.values())

    @property
    def oldest_pending_age(self) -> timedelta | None:
        if self.oldest_pending_created_at is None:
            return None
        return max(self.now - self.oldest_pending_created_at, timedelta(0))


def queue_status(engine: Engine, now_utc: datetime, day_start_utc: datetime) -> QueueStatus:
    """The queue's figures in one grouped query: pending rows (partial index), rejected rows of today or with
    TOO_MANY_ATTEMPTS, and cancellation requests (status index); rows are counted by the database, not read.

    `now_utc` decides what is due; `day_start_utc` is the start of the hospital day in UTC (a rejected row's
    synced_at is when it was rejected)."""
    today = and_(status_is("rejected"), _t.c.synced_at >= day_start_utc)
    wanted = or_(status_is("pending"), status_is("cancel_requested"),
                 and_(status_is("rejected"), or_(_t.c.synced_at >= day_start_utc,
                                                 _t.c.error_code == literal(TOO_MANY_ATTEMPTS, literal_execute=True))))
    stmt = (select(_t.c.status, _t.c.error_code, func.count().label("rows"),
                   func.sum(case((due(now_utc), 1), else_=0)).label("due"),
                   func.sum(case((today, 1), else_=0)).label("today"),
                   func.min(_t.c.created_at).label("oldest"))
            .where(wanted).group_by(_t.c.status, _t.c.error_code))
    with engine.connect() as conn:
        groups = conn.execute(stmt).fetchall()
    figures: dict = dict(deferred_by_code={}, rejected_today_by_code={})
    oldest = []
    for status, code, rows, due_rows, today_rows, first in groups:
        rows, due_rows, today_rows = int(rows), int(due_rows or 0), int(today_rows or 0)
        if status == "pending":
            figures["pending"] = figures.get("pending", 0) + rows
            figures["due_now"] = figures.get("due_now", 0) + due_rows
            if rows > due_rows:
                figures["deferred_by_code"][code] = rows - due_rows
            if code == TOO_MANY_ATTEMPTS:
                figures["too_many_attempts_pending"] = rows
            if first is not None:
                oldest.append(_utc_naive(first))
        elif status == "cancel_requested":
            figures["cancel_requested"] = figures.get("cancel_requested", 0) + rows
        else:  # rejected: today's, and TOO_MANY_ATTEMPTS of any day
            if today_rows:
                figures["rejected_today_by_code"][code] = today_rows
            if code == TOO_MANY_ATTEMPTS:
                figures.update(too_many_attempts_rejected=rows, too_many_attempts_rejected_today=today_rows)
    known = [t for t in oldest if t is not None]
    return QueueStatus(now=now_utc, day_start=day_start_utc, oldest_pending_created_at=min(known, default=None),
                       **figures)


def _utc_naive(value) -> datetime | None:
    """A stored UTC timestamp as a naive datetime (SQLite gives the stored text); None if it is not one."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if pd.isna(stamp):
        return None
    return (stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp).to_pydatetime()


def _new(column: str):
    """A bound value for SET <column>; named apart from the column (SQLAlchemy reserves column names)."""
    return bindparam(f"new_{column}", type_=_t.c[column].type)


_OUTCOME_VALUES = {
    "synced": dict(status="synced", no_rkm_medis=_new("no_rkm_medis"), no_rawat=_new("no_rawat"),
                   no_reg=_new("no_reg"), synced_at=_new("synced_at"), error_code=_new("error_code"),
                   last_error=_new("last_error"), next_attempt_at=null()),
    # a rejected row's synced_at is when the pipeline decided (so "rejected today" can be counted)
    "rejected": dict(status="rejected", error_code=_new("error_code"), last_error=_new("last_error"),
                     next_attempt_at=null(), synced_at=_new("synced_at")),
    "deferred": dict(error_code=_new("error_code"), last_error=_new("last_error"),
                     next_attempt_at=_new("next_attempt_at")),
}
# the status is bound here, not written in: executemany cannot inline values, and the id finds the row anyway
_OUTCOMES = {status: update(_t).where(_t.c.id == bindparam("match_id"), _t.c.status == "pending").values(values)
             for status, values in _OUTCOME_VALUES.items()}
_OUTCOME_PARAMS = {"match_id": "id", "new_error_code": "error_code", "new_last_error": "message",
                   "new_no_rkm_medis": "no_rkm_medis", "new_no_rawat": "no_rawat", "new_no_reg": "no_reg",
                   "new_next_attempt_at": "next_attempt_at"}  # bound name -> outcome column


def write_outcomes(engine: Engine, outcomes: pd.DataFrame, now: datetime) -> dict[str, int]:
    """Apply outcomes in one transaction, one executemany per status. Returns rows updated per status.

    Only rows still `pending` are touched, so a row the website changed meanwhile (for example a
    cancellation request) is left for the reconcile flow rather than overwritten.
    """
    written: dict[str, int] = {}
    if outcomes.empty:
        return written
    with engine.begin() as conn:
        for status, group in outcomes.groupby("status", sort=False):
            params = [{**{name: none_if_missing(row.get(key)) for name, key in _OUTCOME_PARAMS.items()},
                       "new_synced_at": now} for row in group.to_dict("records")]
            result = conn.execute(_OUTCOMES[status], params)
            written[status] = result.rowcount if result.rowcount is not None else len(params)
    return written


def none_if_missing(value):
    """NaN/NaT/pd.NA from pandas become SQL NULL."""
    if value is None:
        return None
    try:
        return None if pd.isna(value) else value
    except (TypeError, ValueError):
        return value


def fetch_rows(engine: Engine, ids: list[str] | None = None) -> pd.DataFrame:
    """Read rows back (tests, demo and reconcile use this)."""
    stmt = select(*[_t.c[c] for c in readable(engine, list(_t.c.keys()))]).order_by(_t.c.created_at, _t.c.id)
    if ids is not None:
        stmt = stmt.where(_t.c.id.in_(list(ids)))
    with engine.connect() as conn:
        return pd.read_sql(stmt, conn)


def defer_due(engine: Engine, now: datetime, next_attempt_at: datetime, error_code: str, message: str) -> int:
    """Khanza is offline: every other due pending row gets the reason and one shared retry time,
    so the website can show it and the next runs do not hammer a dead server."""
    stmt = (update(_t).where(status_is("pending"), due(now))
            .values(error_code=error_code, last_error=message, next_attempt_at=next_attempt_at))
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount or 0


def resume_waiting(engine: Engine, now: datetime, error_code: str) -> int:
    """Khanza answers again: pending rows that wait only because it was away (`error_code`, i.e.
    KHANZA_UNREACHABLE) are due now instead of at the end of their backoff. Call it holding the Khanza write
    slot: every run that leases rows holds that slot, so no row under a live lease is touched. Rows waiting
    for any other reason keep their backoff. Returns how many rows were made due."""
    stmt = (update(_t).where(status_is("pending"), _t.c.error_code == error_code, _t.c.next_attempt_at > now)
            .values(next_attempt_at=now))
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount or 0


def rejected_since(engine: Engine, since: datetime, until: datetime | None = None) -> int:
    """Rows rejected in [since, until) (naive UTC; a rejection's synced_at is when the pipeline decided), for the
    rejections-per-hour alert (khanza_sync/signals.py). Counted by the database, nothing read."""
    stmt = select(func.count()).select_from(_t).where(status_is("rejected"), _t.c.synced_at >= since)
    if until is not None:
        stmt = stmt.where(_t.c.synced_at < until)
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


# ---------------------------------------------------------------- fixing single registrations (flows/fix_registrations.py)
STATE_COLUMNS = ["id", "status", "error_code", "next_attempt_at", "attempts"]
REQUEUEABLE = ("rejected", "pending")  # synced, cancelled and cancel_requested rows are never re-queued


def states(engine: Engine, ids: list[str]) -> pd.DataFrame:
    """The pipeline state of the rows `ids` (no patient data): id, status, error_code, next_attempt_at, attempts.
    Ids that do not exist are simply absent."""
    stmt = select(*[_t.c[c] for c in STATE_COLUMNS]).where(_t.c.id.in_(list(ids)))
    with engine.connect() as conn:
        return frame(conn.execute(stmt), STATE_COLUMNS)


def read_ids(engine: Engine, ids: list[str]) -> pd.DataFrame:
    """Read-only (dry runs, conflict checks): the rows `ids` as the sync's extract gives them (INPUT_COLUMNS)."""
    columns = readable(engine, INPUT_COLUMNS)
    stmt = select(*[_t.c[c] for c in columns]).where(_t.c.id.in_(list(ids))).order_by(_t.c.created_at, _t.c.id)
    with engine.connect() as conn:
        return padded(frame(conn.execute(stmt), columns), INPUT_COLUMNS)


def requeue(engine: Engine, ids: list[str], error_code: str | None = None) -> list[str]:
    """Rows `ids` that are rejected (optionally only with `error_code`) or pending (also deferred, or flagged
    TOO_MANY_ATTEMPTS) back to pending and due now: error cleared, attempts reset. Returns the ids changed;
    any other status (synced, cancelled, cancel_requested) is left alone."""
    conditions = [_t.c.id.in_(list(ids)), _t.c.status.in_(REQUEUEABLE if error_code is None else ("rejected",))]
    if error_code is not None:
        conditions.append(_t.c.error_code == error_code)
    with engine.begin() as conn:
        return update_ids(conn, conditions, REQUEUED)


# back to pending: error cleared, attempts reset, no longer decided (out of the 'rejected today' counts)
REQUEUED = dict(status="pending", error_code=None, last_error=None, next_attempt_at=None, attempts=0, synced_at=None)


def update_ids(conn: Connection, conditions: list, values: dict) -> list[str]:
    """UPDATE the rows matching `conditions` with `values`; returns their ids, sorted. With RETURNING where the
    database has it; MySQL/MariaDB (no UPDATE ... RETURNING): the rows are locked and read first, in the same
    transaction, so the ids are exactly the rows changed."""
    if not is_mysql(conn.dialect):
        return sorted(conn.execute(update(_t).where(*conditions).values(values).returning(_t.c.id)).scalars())
    ids = list(conn.execute(select(_t.c.id).where(*conditions).with_for_update()).scalars())
    if ids:
        conn.execute(update(_t).where(_t.c.id.in_(ids)).values(values))
    return sorted(ids)


def claim_ids(engine: Engine, ids: list[str], limit: int, now: datetime, lease_seconds: int) -> pd.DataFrame:
    """`claim` restricted to the rows `ids`: those of them due and pending, leased to this run."""
    return claim(engine, limit, now, lease_seconds, _t.c.id.in_(list(ids)))
