"""The schema version of Khanza Sync's own tables in Khanza (ledger, decisions), and the ordered steps that bring
an older installation up to date: the one place a release says what it changes there.

`khanza-sync setup` runs `upgrade`; every job checks `problem` before its first task and refuses a schema older
or newer than this release understands, in one line naming what to run. The version is a row in
`khanza_sync_schema`, which the project creates; installations from before that table existed are recognised
by their columns (`_inferred`). Each step is idempotent (it checks the catalogue first), only adds, and touches
only tables the project created. New steps are appended, never changed; CHANGELOG.md names them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from khanza.db import missing_columns, missing_tables
from khanza_sync.settings import PROJECT_ROOT
from khanza_sync.sqlfiles import statements

VERSION_TABLE = "khanza_sync_schema"
COMPONENT = "khanza"  # one row per component; the website contract is versioned on the website's side
LEDGER_TABLE = "khanza_sync_ledger"
TABLES = (LEDGER_TABLE, "khanza_sync_decisions")  # what step 1 makes; without either nothing else counts
DDL = PROJECT_ROOT / "sql" / "khanza_ledger.sql"
SETUP_STEP = "run `khanza-sync setup` (as a user allowed to CREATE and ALTER)"


@dataclass(frozen=True)
class Step:
    version: int
    summary: str
    apply: Callable[[Connection, ZoneInfo | None], None]  # (conn, HOSPITAL_TIMEZONE where a step needs it)


def _tables(conn: Connection, tz: ZoneInfo | None = None) -> None:
    """The ledger and decisions tables (CREATE TABLE IF NOT EXISTS: an existing one is left as it is) and the
    version table itself."""
    for stmt in statements(DDL):
        conn.exec_driver_sql(stmt)


def _add_columns(table: str, columns: tuple[tuple[str, str], ...]) -> Callable[[Connection, ZoneInfo | None], None]:
    def apply(conn: Connection, tz: ZoneInfo | None = None) -> None:
        missing = missing_columns(conn, table, [name for name, _ in columns])
        for name, definition in columns:
            if name in missing:
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")
    return apply


# The definitions exactly as sql/khanza_ledger.sql has them (a new installation gets them from there).
CANCEL_COLUMNS = (("cancel_result", "varchar(40) DEFAULT NULL"), ("cancel_decided_at", "datetime DEFAULT NULL"))

UTC_OFFSET_COLUMN = ("created_utc_offset", "smallint DEFAULT NULL")
RUN_BY_COLUMN = ("run_by", "varchar(255) DEFAULT NULL")


def _ledger_times_in_utc(conn: Connection, tz: ZoneInfo | None = None) -> None:
    """The ledger's created_at becomes UTC: the column created_utc_offset, then every row older releases wrote in
    hospital time (offset NULL) converted, each in one statement that also sets its offset, so a row is never
    converted twice even if this step is cut off and run again."""
    from khanza.ledger import utc_stamp  # the ledger module imports this one

    _add_columns(LEDGER_TABLE, (UTC_OFFSET_COLUMN,))(conn)
    old = conn.execute(text(f"SELECT registration_id, created_at FROM {LEDGER_TABLE} "
                            "WHERE created_utc_offset IS NULL")).all()
    if not old:
        return
    if tz is None:
        raise ValueError(f"{LEDGER_TABLE} has {len(old)} rows in hospital time: converting them needs HOSPITAL_TIMEZONE")
    params = []
    for registration_id, local in old:
        utc, offset = utc_stamp(local, tz)
        params.append({"id": registration_id, "utc": utc, "offset": offset})
    conn.execute(text(f"UPDATE {LEDGER_TABLE} SET created_at = :utc, created_utc_offset = :offset "
                      "WHERE registration_id = :id AND created_utc_offset IS NULL"), params)


STEPS: tuple[Step, ...] = (
    Step(1, "khanza_sync_ledger and khanza_sync_decisions", _tables),
    Step(2, "khanza_sync_ledger: cancel_result, cancel_decided_at (reconcile's record of a cancellation)",
         _add_columns(LEDGER_TABLE, CANCEL_COLUMNS)),
    Step(3, "khanza_sync_ledger: created_at in UTC, created_utc_offset (rows of older releases converted once "
            "from HOSPITAL_TIMEZONE)", _ledger_times_in_utc),
    Step(4, "khanza_sync_decisions: run_by (what the machine vouches for: flow run, deployment, Unix user@host)",
         _add_columns("khanza_sync_decisions", (RUN_BY_COLUMN,))),
)
CURRENT = STEPS[-1].version


class NewerSchema(RuntimeError):
    """Khanza holds a schema a later release made: this one must not write there."""


def recorded_version(conn: Connection) -> int | None:
    """The version row, or None: no version table (or not readable by this user: information_schema lists only
    what it may read), or no row yet."""
    if missing_tables(conn, [VERSION_TABLE]):
        return None
    found = conn.execute(text(f"SELECT version FROM {VERSION_TABLE} WHERE component = :c"), {"c": COMPONENT}).scalar()
    return None if found is None else int(found)


def found_version(conn: Connection) -> int:
    """The schema version installed in this Khanza database: 0 when the ledger or decisions table is not there
    (whatever a version row says: the tables it stands for are what count)."""
    return _found(conn, recorded_version(conn))


def _found(conn: Connection, recorded: int | None) -> int:
    if missing_tables(conn, list(TABLES)):
        return 0
    return _inferred(conn) if recorded is None else recorded


def _inferred(conn: Connection) -> int:
    """Releases before the version table: the ledger's columns say which steps they had."""
    if missing_columns(conn, LEDGER_TABLE, [name for name, _ in CANCEL_COLUMNS]):
        return 1
    return 2


def upgrade(conn: Connection, tz: ZoneInfo | None = None) -> list[Step]:
    """Apply, in order, every step above the installed version and record each; nothing when up to date.
    Refuses (NewerSchema) a schema newer than this release. `tz` (HOSPITAL_TIMEZONE) is needed by step 3 when
    the ledger holds rows of an older release. Returns the steps applied."""
    recorded = recorded_version(conn)
    found = _found(conn, recorded)
    if found > CURRENT:
        raise NewerSchema(newer_line(found))
    applied = []
    for step in STEPS:
        if step.version <= found:
            continue
        step.apply(conn, tz)
        _record(conn, step.version)
        applied.append(step)
    if not applied and recorded != found:
        _record(conn, found)  # an installation from before the version table gets its row
    return applied


def _record(conn: Connection, version: int) -> None:
    _tables(conn)  # the version table exists before its first row (idempotent)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    conn.execute(text(f"INSERT INTO {VERSION_TABLE} (component, version, upgraded_at) VALUES (:c, :v, :t) "
                      "ON DUPLICATE KEY UPDATE version = VALUES(version), upgraded_at = VALUES(upgraded_at)"),
                 {"c": COMPONENT, "v": version, "t": now})


def newer_line(found: int) -> str:
    return (f"Khanza Sync's tables in Khanza are at schema version {found}, newer than this release understands "
            f"({CURRENT}): install the release that made them (CHANGELOG.md), or a later one")


def problem(conn: Connection) -> str | None:
    """One line when the installed schema is not the one this release writes to; None when it is."""
    recorded = recorded_version(conn)
    found = _found(conn, recorded)
    if found == CURRENT and recorded is not None:
        return None
    if found > CURRENT:
        return newer_line(found)
    if found == 0:
        missing = missing_tables(conn, list(TABLES))
        if missing == [LEDGER_TABLE]:
            return f"the ledger table {LEDGER_TABLE} is missing: {SETUP_STEP}"
        return f"{', '.join(missing)} is missing: {SETUP_STEP}"
    if recorded is None:  # made before the version table, or the pipeline's user may not read it
        return (f"{VERSION_TABLE} is missing or not readable in Khanza (this release needs schema version {CURRENT}): "
                f"{SETUP_STEP}, then re-apply sql/khanza_grants.sql")
    return (f"Khanza Sync's tables in Khanza are at schema version {found}, this release needs {CURRENT}: "
            f"{SETUP_STEP}")
