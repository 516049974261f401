"""Set-up problems in one line each: `khanza-sync check`, and `explain()` for the other commands and the flows.

`khanza-sync check` verifies a configuration end to end and writes nothing (reads only; a SQLite website file
is opened read-only): both databases reachable with the configured login, Khanza's tables the pipeline reads
and writes, the ledger, the website's `online_registrations` with the columns of website/schema.py, the
mappings folder and every mapped code active in Khanza, and the numbering settings the pipeline will use. One
line per check, `ok`, `FAIL` (with what to fix) or `skip` (an earlier failure prevents it); exit 0 only if
every check passed.

`explain(error, settings)` turns an exception into the same kind of line (which database, host:port, which
setting or step to fix), or None when it is not a set-up or database problem (a bug: let it raise). The CLI
prints it instead of a traceback; the flows end Failed with it as their message.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from khanza_sync.settings import Settings, load_settings

# The Khanza tables the pipeline reads or writes (khanza/, sql/khanza_grants.sql); the ledger is checked apart.
KHANZA_TABLES = ("pasien", "reg_periksa", "booking_registrasi", "poliklinik", "dokter", "spesialis", "penjab",
                 "jadwal", "set_no_rkm_medis", "set_urut_no_rkm_medis", "kelurahan", "kecamatan", "kabupaten",
                 "propinsi", "perusahaan_pasien", "suku_bangsa", "bahasa_pasien", "cacat_fisik")
LEDGER_TABLE = "khanza_sync_ledger"
SETUP_STEP = "run `khanza-sync setup` (once, as a user allowed to CREATE)"
WEBSITE_STEP = ("run `khanza-sync setup --website`, or have the website team apply "
                "sql/website_{dialect}.sql")


def website_dialect(name: str) -> str:
    """sqlite | postgresql | mysql (MariaDB too): the suffix of the website's sql/website_*.sql files."""
    from website.schema import family

    return family(name) if family(name) in ("postgresql", "mysql") else "sqlite"


# ---------------------------------------------------------------- where things are


def khanza_where(settings: Settings) -> str:
    return f"Khanza database {settings.khanza_db_name!r} at {settings.khanza_db_host}:{settings.khanza_db_port}"


def website_where(settings: Settings) -> str:
    url = make_url(settings.website_db_url.get_secret_value())
    if url.get_backend_name() == "sqlite":
        return f"website SQLite file {url.database or ':memory:'}"
    return (f"website database {url.database!r} at {url.host or 'localhost'}:{url.port or _default_port(url)} "
            f"({url.get_backend_name()})")


def _default_port(url) -> int | str:
    return {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}.get(url.get_backend_name(), "?")


# ---------------------------------------------------------------- before a flow run's first task


class SetupProblem(Exception):
    """A set-up mistake found before any work, with its one line."""


def preflight(settings: Settings, khanza, website, mappings: bool = True) -> bool:
    """The quick part of `khanza-sync check`, at the start of every flow run (a few catalogue reads): the
    mappings folder, the website table, and the Khanza login and ledger. Raises SetupProblem, or the database
    error that `explain` turns into one line, before any task has run (so Prefect logs no task traceback).
    Khanza being unreachable or stalled is not a set-up mistake here: the run's offline handling takes it.
    Returns whether Khanza was reached (for the alerts' reachable/offline signals)."""
    from khanza import db as khanza_db
    from khanza import migrations
    from website import schema

    if mappings and (problem := mappings_line(settings)):
        raise SetupProblem(problem)
    found = inspect(website)
    if not found.has_table(schema.registrations.name):
        raise SetupProblem(f"website table {schema.registrations.name} is missing in {website_where(settings)}: "
                           + WEBSITE_STEP.format(dialect=website_dialect(website.dialect.name)))
    if missing := missing_website_columns(found):  # before anything is claimed or loaded
        raise SetupProblem(lacks_columns_line(missing, settings, website.dialect.name))
    if (problem := claim_column_problem(website)) is not None:
        raise SetupProblem(f"{website_where(settings)}: {problem}")
    try:
        with khanza.connect() as conn:
            problem = migrations.problem(conn)  # older or newer than this release: nothing is written
    except Exception as error:
        if khanza_db.is_transient(error):
            return False
        raise
    if problem:
        raise SetupProblem(f"{khanza_where(settings)}: {problem}")
    return True


# ---------------------------------------------------------------- explain an error


def explain(error: BaseException, settings: Settings | None = None) -> str | None:
    """One line saying what is wrong and which setting or step fixes it; None if `error` is not a set-up,
    configuration or database problem."""
    if isinstance(error, ValidationError):
        return _settings_line(error)
    if settings is None:
        try:
            settings = load_settings()
        except ValidationError as bad:
            return _settings_line(bad)
    for item in _chain(error):
        line = _explain_one(item, settings)
        if line:
            return line
    return None


def _chain(error: BaseException):
    """`error`, the driver error it wraps, and the errors it was raised from, without repeats."""
    seen, todo = set(), [error]
    while todo:
        item = todo.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo += [getattr(item, "orig", None), item.__cause__, item.__context__]


def _settings_line(error: ValidationError) -> str:
    problems = []
    for e in error.errors():
        name = "_".join(str(p) for p in e.get("loc", ())).upper() or "settings"
        problems.append(f"{name}: {e.get('msg', 'invalid')}")
    return "invalid setting " + "; ".join(problems) + " (fix it in .env or the environment)"


def _explain_one(error: BaseException, settings: Settings) -> str | None:
    name = type(error).__name__
    if isinstance(error, SetupProblem):
        return str(error)
    if name in ("TaskRunTimeoutError", "FlowRunTimeoutError"):
        # Prefect reports the run's own deadline inside a task as that task's timeout: name both limits.
        return (f"stopped by a timeout (TASK_TIMEOUT_SECONDS={settings.task_timeout_seconds:g}s per step, "
                f"FLOW_TIMEOUT_SECONDS={settings.flow_timeout_seconds:g}s per run): a database answered too slowly "
                f"({khanza_where(settings)}; {website_where(settings)}); raise them only for a healthy but slow run")
    if name == "MappingFileError":
        return f"mapping file problem: {error} (MAPPINGS_DIR={settings.mappings_dir})"
    if isinstance(error, FileNotFoundError) and _under(error.filename, settings.mappings_dir):
        return mappings_line(settings)
    if name == "YAMLError" or type(error).__module__.startswith("yaml"):
        return f"a mapping file in MAPPINGS_DIR={settings.mappings_dir} is not valid YAML: {str(error).splitlines()[0]}"
    if name == "KhanzaUnavailable":
        return (f"{khanza_where(settings)}: {error} (another run or worker is writing; "
                f"KHANZA_LOCK_TIMEOUT_SECONDS={settings.khanza_lock_timeout_seconds})")
    database = getattr(error, "khanza_sync_database", None) or _database_of(error)
    if database == "khanza":
        return _khanza_line(error, settings)
    if database == "website":
        return _website_line(error, settings)
    return None


def _under(path, folder: Path) -> bool:
    try:
        return path is not None and Path(path).resolve().is_relative_to(Path(folder).resolve())
    except (OSError, ValueError):
        return False


def mappings_line(settings: Settings) -> str | None:
    """None if MAPPINGS_DIR holds the three mapping files, else what is missing."""
    from mappings import FILES

    folder = Path(settings.mappings_dir)
    if not folder.is_dir():
        return (f"mappings folder {folder} does not exist: set MAPPINGS_DIR to the folder with "
                + ", ".join(FILES.values()))
    missing = [f for f in FILES.values() if not (folder / f).is_file()]
    if missing:
        return f"mappings folder {folder} (MAPPINGS_DIR) lacks {', '.join(missing)}"
    return None


def database_of(error: BaseException) -> str | None:
    """"khanza" or "website": which database `error` (or an error it wraps) came from; None if neither."""
    for item in _chain(error):
        found = getattr(item, "khanza_sync_database", None) or _database_of(item)
        if found:
            return found
    return None


def _database_of(error: BaseException) -> str | None:
    module = type(error).__module__
    if module.startswith("pymysql"):
        return "khanza"
    if module.startswith(("psycopg", "sqlite3")):
        return "website"
    return None


def _mysql_code(error: BaseException) -> int | None:
    args = getattr(error, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _first_line(error: BaseException) -> str:
    text_ = str(getattr(error, "orig", None) or error).strip().splitlines()
    return text_[0] if text_ else type(error).__name__


def _khanza_line(error: BaseException, settings: Settings) -> str | None:
    where, code, msg = khanza_where(settings), _mysql_code(error), _first_line(error)
    if code is None:  # the SQLAlchemy wrapper: its driver error comes next in the chain
        return None
    user = settings.khanza_db_user
    if code == 2003:
        if "timed out" in msg:
            return (f"{where} did not answer within KHANZA_CONNECT_TIMEOUT={settings.khanza_connect_timeout}s when "
                    "connecting: stalled, or a wrong KHANZA_DB_HOST / KHANZA_DB_PORT")
        return f"{where} is unreachable ({_reason(msg)}): check KHANZA_DB_HOST / KHANZA_DB_PORT, and that MariaDB runs"
    if code in (2013, 2006, 2055) and "timed out" in msg:
        return (f"{where} stalled: no answer within KHANZA_READ_TIMEOUT={settings.khanza_read_timeout}s "
                f"(or KHANZA_WRITE_TIMEOUT={settings.khanza_write_timeout}s)")
    if code in (2013, 2006, 2055):
        return f"{where} dropped the connection ({msg})"
    if code == 1045:
        return f"{where} refused the login of user {user!r}: check KHANZA_DB_USER / KHANZA_DB_PASSWORD"
    if code == 1044:
        return (f"{where}: user {user!r} has no access to this database: check KHANZA_DB_NAME, "
                "or grant it (sql/khanza_grants.sql)")
    if code == 1049:
        return f"{where} does not exist: check KHANZA_DB_NAME"
    if code == 1146:
        table = _table_of(msg)
        if table == LEDGER_TABLE:
            return f"the ledger table {LEDGER_TABLE} is missing in {where}: {SETUP_STEP}"
        return (f"Khanza table {table} is missing in {where}: check KHANZA_DB_NAME points at the hospital's "
                "Khanza database")
    if code in (1142, 1143):
        return f"{where}: user {user!r} lacks a right the pipeline needs ({msg}): apply sql/khanza_grants.sql"
    if code == 1054:
        return f"{where}: a column the pipeline uses is missing ({msg}); for the ledger: {SETUP_STEP}"
    if code in (1040, 1053, 1205, 1213):
        return f"{where} is busy or shutting down ({msg}); the next run tries again"
    return None


def _table_of(message: str) -> str:
    found = re.search(r"Table '(?:[^'.]+\.)?([^']+)' doesn't exist", message)
    return found.group(1) if found else "?"


def _reason(message: str) -> str:
    lowered = message.lower()
    for needle, reason in (("refused", "connection refused"), ("name or service not known", "unknown host"),
                           ("nodename nor servname", "unknown host"), ("no route", "no route to host"),
                           ("timed out", "timed out"), ("timeout", "timed out")):
        if needle in lowered:
            return reason
    return message


def _website_line(error: BaseException, settings: Settings) -> str | None:
    where, msg = website_where(settings), _first_line(error)
    lowered = msg.lower()
    if type(error).__module__.startswith("sqlalchemy"):
        return None  # the driver's own error comes next in the chain
    dialect = website_dialect(make_url(settings.website_db_url.get_secret_value()).get_backend_name())
    step = WEBSITE_STEP.format(dialect=dialect)
    if type(error).__module__.startswith("pymysql"):
        return _website_mysql_line(error, settings, where, step)
    stalled = getattr(error, "khanza_sync_stalled_after", None)
    if stalled is not None:
        return (f"{where} stalled: no answer within {stalled:g}s (WEBSITE_STATEMENT_TIMEOUT_SECONDS="
                f"{settings.website_statement_timeout_seconds:g} + WEBSITE_CONNECT_TIMEOUT="
                f"{settings.website_connect_timeout})")
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate == "57014" or "statement timeout" in lowered:
        return (f"{where} stalled: a statement ran past WEBSITE_STATEMENT_TIMEOUT_SECONDS="
                f"{settings.website_statement_timeout_seconds:g} (a lock held by the website, or an overloaded server)")
    if "connection timeout expired" in lowered or "timeout expired" in lowered:
        return (f"{where} did not answer within WEBSITE_CONNECT_TIMEOUT={settings.website_connect_timeout}s when "
                "connecting: stalled, or a wrong host or port in WEBSITE_DB_URL")
    if "database is locked" in lowered:
        return (f"{where} stayed locked by another writer for WEBSITE_STATEMENT_TIMEOUT_SECONDS="
                f"{settings.website_statement_timeout_seconds:g}")
    if sqlstate in ("28P01", "28000") or "password authentication failed" in lowered or (
            "role" in lowered and "does not exist" in lowered) or "no password supplied" in lowered:
        return f"{where} refused the login: check the user and password in WEBSITE_DB_URL"
    if sqlstate == "3D000" or re.search(r'database "[^"]+" does not exist', msg):
        return f"{where} does not exist: check the database name in WEBSITE_DB_URL"
    if "connection refused" in lowered or "could not translate host name" in lowered or \
            "no route to host" in lowered or "network is unreachable" in lowered:
        return f"{where} is unreachable ({_reason(msg)}): check the host and port in WEBSITE_DB_URL, and that the server runs"
    if "unable to open database file" in lowered:
        return f"{where} cannot be opened: check the path in WEBSITE_DB_URL (folder exists and is writable)"
    if sqlstate == "42P01" or "no such table" in lowered or "does not exist" in lowered and "relation" in lowered:
        table = re.search(r'(?:no such table: |relation ")([\w.]+)', msg)
        return f"website table {table.group(1) if table else '?'} is missing in {where}: {step}"
    if sqlstate == "42703" or "no such column" in lowered or ("column" in lowered and "does not exist" in lowered):
        return f"{where}: a column of online_registrations is missing ({msg}): compare with {step.split(' apply ')[-1]}"
    if sqlstate == "42501" or "permission denied" in lowered:
        return f"{where}: the user in WEBSITE_DB_URL lacks a right ({msg}): apply sql/website_grants_postgresql.sql"
    if "server closed the connection" in lowered or "connection is lost" in lowered or "consuming input failed" in lowered:
        return f"{where} dropped the connection ({msg})"
    return None


def _website_mysql_line(error: BaseException, settings: Settings, where: str, step: str) -> str | None:
    """A MySQL/MariaDB website's error by its number (the same numbers as Khanza's, another database)."""
    code, msg = _mysql_code(error), _first_line(error)
    guard = settings.website_statement_timeout_seconds + settings.website_connect_timeout
    if code == 2003:
        if "timed out" in msg:
            return (f"{where} did not answer within WEBSITE_CONNECT_TIMEOUT={settings.website_connect_timeout}s when "
                    "connecting: stalled, or a wrong host or port in WEBSITE_DB_URL")
        return (f"{where} is unreachable ({_reason(msg)}): check the host and port in WEBSITE_DB_URL, and that the "
                "server runs")
    if code in (2013, 2006, 2055) and "timed out" in msg:
        return (f"{where} stalled: no answer within {guard:g}s (WEBSITE_STATEMENT_TIMEOUT_SECONDS="
                f"{settings.website_statement_timeout_seconds:g} + WEBSITE_CONNECT_TIMEOUT="
                f"{settings.website_connect_timeout})")
    if code in (2013, 2006, 2055, 1927):
        return f"{where} dropped the connection ({msg})"
    if code in (1969, 3024):  # MariaDB max_statement_time, MySQL max_execution_time
        return (f"{where} stalled: a statement ran past WEBSITE_STATEMENT_TIMEOUT_SECONDS="
                f"{settings.website_statement_timeout_seconds:g} (an overloaded server)")
    if code == 1205:
        return (f"{where}: a row stayed locked past WEBSITE_STATEMENT_TIMEOUT_SECONDS="
                f"{settings.website_statement_timeout_seconds:g} (a long transaction of the website's); the next run "
                "tries again")
    if code == 1045:
        return f"{where} refused the login: check the user and password in WEBSITE_DB_URL"
    if code == 1044:
        return (f"{where}: the user in WEBSITE_DB_URL has no access to this database: check the database name, or "
                "apply sql/website_grants_mysql.sql")
    if code == 1049:
        return f"{where} does not exist: check the database name in WEBSITE_DB_URL"
    if code == 1146:
        return f"website table {_table_of(msg)} is missing in {where}: {step}"
    if code == 1054:
        return f"{where}: a column of online_registrations is missing ({msg}): compare with {step.split(' apply ')[-1]}"
    if code in (1142, 1143):
        return f"{where}: the user in WEBSITE_DB_URL lacks a right ({msg}): apply sql/website_grants_mysql.sql"
    if code in (1040, 1053, 1213):
        return f"{where} is busy or shutting down ({msg}); the next run tries again"
    return None


def missing_website_columns(found) -> list[str]:
    """The columns of the contract (website/contract.py) the inspected database's online_registrations lacks and the
    jobs cannot run without (an optional step's columns are read as empty)."""
    from website import contract, schema

    return contract.required_missing({c["name"] for c in found.get_columns(schema.registrations.name)})


def missing_optional_columns(found) -> list[str]:
    """The optional contract columns the table lacks (read as empty until the website adds them)."""
    from website import contract, schema

    return contract.optional_missing({c["name"] for c in found.get_columns(schema.registrations.name)})


def lacks_columns_line(missing: list[str], settings: Settings, dialect_name: str) -> str:
    from website import contract, schema

    present = {c.name for c in schema.registrations.columns} - set(missing)
    return (f"online_registrations in {website_where(settings)} lacks columns {', '.join(missing)} (contract version "
            f"{contract.found_version(present)} found, {contract.CURRENT} expected): run `khanza-sync setup "
            f"--website` if it made the table, else its owner applies docs/website.md 'Upgrading the contract' "
            f"(compare with sql/website_{website_dialect(dialect_name)}.sql)")


def claim_column_problem(engine) -> str | None:
    """On a MySQL/MariaDB without FOR UPDATE SKIP LOCKED the claim needs online_registrations.claim_token; None when
    the table has it or the server does not need it (one catalogue read on MySQL; nothing elsewhere)."""
    from website import schema, store

    if not store.is_mysql(engine.dialect):
        return None
    with engine.connect() as conn:
        if store.claim_method(conn.dialect) != "token":
            return None
        have = {c["name"] for c in inspect(conn).get_columns(schema.registrations.name)}
        version = conn.dialect.server_version_info
    if schema.CLAIM_TOKEN in have:
        return None
    shown = ".".join(str(v) for v in version or () if isinstance(v, int))
    return (f"this server ({shown}) has no FOR UPDATE SKIP LOCKED, so online_registrations needs the column "
            f"{schema.CLAIM_TOKEN} VARCHAR(32) NULL for the claim: add it as sql/website_mysql.sql has it")


# ---------------------------------------------------------------- khanza-sync check


@dataclass
class Check:
    name: str
    ok: bool | None  # None: skipped because an earlier check failed
    detail: str

    def line(self) -> str:
        word = {True: "ok  ", False: "FAIL", None: "skip"}[self.ok]
        return f"{word}  {self.name}: {self.detail}"


def run_checks(settings: Settings | None = None) -> list[Check]:
    """Every check, in order; reads only."""
    checks: list[Check] = []
    if settings is None:
        try:
            settings = load_settings()
        except ValidationError as error:
            return [Check("settings", False, _settings_line(error))]
    checks.append(Check("settings", True, "read from the environment and .env"))
    khanza_ok = _check_khanza(settings, checks)
    _check_website(settings, checks)
    _check_mappings(settings, checks, khanza_ok)
    return checks


def _guard(checks: list[Check], name: str, settings: Settings, fn) -> bool:
    """Run one check; a failure becomes its FAIL line (explained when possible). True if it passed."""
    try:
        ok, detail = fn()
    except Exception as error:  # noqa: BLE001 - every failure is reported as a line, never a traceback
        detail = explain(error, settings) or f"{type(error).__name__}: {_first_line(error)}"
        ok = False
    checks.append(Check(name, ok, detail))
    return ok


def _check_khanza(settings: Settings, checks: list[Check]) -> bool:
    from khanza import db as khanza_db
    from khanza import masterdata

    where = khanza_where(settings)
    names = ["Khanza clock", "Khanza tables", "ledger", "decisions", "desk rules", "numbering"]
    engine = khanza_db.make_engine(settings)
    try:
        def connect():
            with engine.connect() as conn:
                version = conn.execute(text("SELECT VERSION()")).scalar()
            return True, f"{where} as {settings.khanza_db_user!r} ({version})"

        if not _guard(checks, "Khanza connection", settings, connect):
            checks += [Check(n, None, "no Khanza connection") for n in names]
            return False

        def clock():
            with engine.connect() as conn:
                server = conn.execute(text("SELECT TIMEDIFF(NOW(), UTC_TIMESTAMP())")).scalar()
            return clock_line(settings, server)

        _guard(checks, "Khanza clock", settings, clock)

        def tables():
            with engine.connect() as conn:
                missing = khanza_db.missing_tables(conn, KHANZA_TABLES)
            if missing:
                return False, (f"missing in {where}: {', '.join(missing)}: check KHANZA_DB_NAME points at the "
                               "hospital's Khanza database (and that the user may read them: sql/khanza_grants.sql)")
            return True, f"the {len(KHANZA_TABLES)} tables the pipeline reads and writes are there"

        tables_ok = _guard(checks, "Khanza tables", settings, tables)

        def ledger():
            from khanza import migrations
            from khanza.tables import LEDGER

            with engine.connect() as conn:
                if khanza_db.missing_tables(conn, [LEDGER_TABLE]):
                    return False, f"{LEDGER_TABLE} is missing in {where}: {SETUP_STEP}"
                missing = khanza_db.missing_columns(conn, LEDGER_TABLE, list(LEDGER.c.keys()))
                found, problem = migrations.found_version(conn), migrations.problem(conn)
            if problem:
                return False, f"schema version {found} found, {migrations.CURRENT} expected: {problem}"
            if missing:
                return False, f"{LEDGER_TABLE} lacks columns {', '.join(missing)}: recreate it from sql/khanza_ledger.sql"
            return True, f"{LEDGER_TABLE} is there, schema version {found} (this release's)"

        _guard(checks, "ledger", settings, ledger)

        def decisions():
            from khanza.tables import DECISIONS

            with engine.connect() as conn:
                if khanza_db.missing_tables(conn, [DECISIONS.name]):
                    return False, (f"{DECISIONS.name} (staff decisions: requeue-registrations, "
                                   f"resolve-patient-conflict) is missing in {where}: {SETUP_STEP}")
            return True, f"{DECISIONS.name} is there"

        def desk_rules():
            # information_schema lists only the tables this user may read: a table missing here is either an
            # older Khanza (its default applies) or grants not re-run, and then a desk rule is silently skipped
            from khanza.capabilities import OPTIONAL_TABLES

            with engine.connect() as conn:
                missing = khanza_db.missing_tables(conn, list(OPTIONAL_TABLES))
            if not missing:
                return True, "kamar_inap, set_validasi_registrasi and set_urut_no_rkm_medis readable: every desk rule checked"
            return True, ("not readable, so Khanza's default applies: "
                          + "; ".join(f"{t}: {OPTIONAL_TABLES[t]}" for t in missing)
                          + ". On a current Khanza, apply sql/khanza_grants.sql again")

        _guard(checks, "decisions", settings, decisions)
        if not tables_ok:
            checks += [Check(name, None, "Khanza tables missing") for name in ("desk rules", "numbering")]
            return False

        def numbering():
            with engine.connect() as conn:
                md = masterdata.load(conn)
            missing = masterdata.missing_placeholders(md)
            detail = numbering_line(settings, md.rm_format)
            if missing:
                return False, (f"{detail}; Khanza lacks the '-' placeholder rows new patients need: "
                               f"{', '.join(missing)}")
            return True, detail

        _guard(checks, "desk rules", settings, desk_rules)
        return _guard(checks, "numbering", settings, numbering)
    finally:
        engine.dispose()


def numbering_line(settings: Settings, rm) -> str:
    scope = {"dokter": "per doctor and day", "poli": "per clinic and day",
             "dokter+poli": "per doctor, clinic and day"}[settings.noreg_scope]
    shared = ("shared with walk-ins and bookings (max over booking_registrasi and reg_periksa)"
              if settings.noreg_shared_with_booking else "from reg_periksa")
    target = {"reg_periksa": "visits (reg_periksa)", "booking": "bookings (booking_registrasi, status Belum)"}[
        settings.khanza_target]
    parts = [p for p, on in (("year", rm.tahun), ("month", rm.bulan)) if on]
    affix = (f", {' and '.join(parts)} as {'prefix' if rm.posisi == 'Depan' else 'suffix'}" if parts else "")
    return (f"no_reg {scope} (KHANZA_URUTNOREG={settings.khanza_urutnoreg!r} -> {settings.noreg_scope}), "
            f"{shared} (KHANZA_BASENOREG={settings.khanza_basenoreg!r}); writes {target} (KHANZA_TARGET); "
            f"no_rkm_medis {rm.urutan}{affix} (set_urut_no_rkm_medis)")


def _website_engine_readonly(settings: Settings):
    """The website engine for checking: SQLite opened read-only (never created), PostgreSQL and MySQL/MariaDB with
    their timeouts."""
    from website import store

    url = make_url(settings.website_db_url.get_secret_value())
    if url.get_backend_name() == "sqlite":
        path = url.database
        if not path or path == ":memory:":
            raise FileNotFoundError("WEBSITE_DB_URL names no SQLite file")
        if not Path(path).is_file():
            return None
        return create_engine(f"sqlite:///file:{Path(path).resolve()}?mode=ro&uri=true", hide_parameters=True,
                             connect_args={"timeout": settings.website_statement_timeout_seconds})
    return store.make_engine(url.render_as_string(hide_password=False),
                             connect_timeout=settings.website_connect_timeout,
                             statement_timeout=settings.website_statement_timeout_seconds)


def _check_website(settings: Settings, checks: list[Check]) -> bool:
    from website import schema

    where = website_where(settings)
    table = schema.registrations
    try:
        engine = _website_engine_readonly(settings)
    except Exception as error:  # noqa: BLE001
        checks.append(Check("website connection", False, explain(error, settings) or f"WEBSITE_DB_URL: {error}"))
        checks.append(Check(f"website table {table.name}", None, "no website connection"))
        return False
    if engine is None:
        checks.append(Check("website connection", False, f"{where} does not exist: check WEBSITE_DB_URL, or "
                            + WEBSITE_STEP.format(dialect="sqlite")))
        checks.append(Check(f"website table {table.name}", None, "no website connection"))
        return False
    try:
        def connect():
            from website import store

            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                if not store.is_mysql(conn.dialect):
                    return True, where
                version = conn.execute(text("SELECT VERSION()")).scalar()
                method = store.claim_method(conn.dialect)
            claims = {"skip_locked": "claims with FOR UPDATE SKIP LOCKED",
                      "token": "no SKIP LOCKED here: claims with UPDATE ... LIMIT and claim_token"}[method]
            return True, f"{where} ({version}; {claims})"

        if not _guard(checks, "website connection", settings, connect):
            checks.append(Check(f"website table {table.name}", None, "no website connection"))
            return False

        def columns():
            from website import contract

            dialect = website_dialect(engine.dialect.name)
            found = inspect(engine)
            if not found.has_table(table.name):
                return False, f"{table.name} is missing in {where}: " + WEBSITE_STEP.format(dialect=dialect)
            have = {c["name"] for c in found.get_columns(table.name)}
            if missing := missing_website_columns(found):
                return False, lacks_columns_line(missing, settings, engine.dialect.name)
            if (problem := claim_column_problem(engine)) is not None:
                return False, problem
            optional = missing_optional_columns(found)
            extra = len(have) - (len(table.columns) - len(optional))
            if optional:  # the jobs run; the optional fields read as empty until the website adds them
                present = {c.name for c in table.columns} - set(optional)
                return True, (f"contract version {contract.found_version(present)} of {contract.CURRENT}: "
                              f"{len(table.columns) - len(optional)} columns as website/schema.py defines them, "
                              f"without the optional {', '.join(optional)} (read as empty until added: khanza-sync "
                              f"setup --website, or docs/website.md 'Upgrading the contract')"
                              + (f" (and {extra} of the website's own, left alone)" if extra > 0 else ""))
            return True, (f"contract version {contract.CURRENT}: {len(table.columns)} columns as website/schema.py "
                          "defines them"
                          + (f" (and {extra} of the website's own, left alone)" if extra > 0 else ""))

        return _guard(checks, f"website table {table.name}", settings, columns)
    finally:
        engine.dispose()


def _check_mappings(settings: Settings, checks: list[Check], khanza_ok: bool) -> None:
    import mappings

    def files():
        problem = mappings_line(settings)
        if problem:
            return False, problem
        maps = mappings.load(settings.mappings_dir)
        return True, (f"{settings.mappings_dir}: {len(maps.poliklinik)} clinics, {len(maps.dokter)} doctors, "
                      f"{len(maps.penjab)} payers")

    if not _guard(checks, "mappings folder", settings, files):
        checks.append(Check("mapped codes", None, "mappings not readable"))
        return
    if not khanza_ok:
        checks.append(Check("mapped codes", None, "no Khanza connection"))
        return

    def codes():
        from khanza import db as khanza_db
        from khanza import reconcile as kr

        maps = mappings.load(settings.mappings_dir)
        engine = khanza_db.make_engine(settings)
        try:
            with engine.connect() as conn:
                snapshot = kr.read_master(conn)
        finally:
            engine.dispose()
        bad = [p for p in kr.mapping_problems(maps, snapshot)
               if p["problem"].startswith(("unknown code", "inactive"))]
        if bad:
            shown = "; ".join(f"{p['mapping']} {p['slug']} -> {p['code']}: {p['problem']}" for p in bad[:5])
            more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
            return False, f"{shown}{more}: correct {settings.mappings_dir} (MAPPINGS_DIR) or Khanza's master data"
        total = len(maps.poliklinik) + len(maps.dokter) + len(maps.penjab)
        return True, f"all {total} mapped codes exist and are active in Khanza"

    _guard(checks, "mapped codes", settings, codes)


def main() -> int:
    """`khanza-sync check`: print one line per check; 0 only if every check passed."""
    checks = run_checks()
    for check in checks:
        print(check.line())
    failed = sum(c.ok is False for c in checks)
    print(f"{len(checks)} checks: " + ("all passed" if not failed else f"{failed} failed"))
    return 0 if failed == 0 and all(c.ok for c in checks) else 1


def _utc_offset_text(offset) -> str:
    minutes = round(offset.total_seconds() / 60)
    sign, minutes = ("+" if minutes >= 0 else "-"), abs(minutes)
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def clock_line(settings: Settings, server_offset) -> tuple[bool, str]:
    """HOSPITAL_TIMEZONE against the Khanza server's own clock (TIMEDIFF(NOW(), UTC_TIMESTAMP()), a timedelta):
    visit days and booking times are compared with Khanza's, so both must be the same zone's."""
    from datetime import datetime

    ours = datetime.now(settings.tz).utcoffset()
    theirs = server_offset if server_offset is not None else ours
    if abs((theirs - ours).total_seconds()) < 60:
        return True, f"HOSPITAL_TIMEZONE={settings.hospital_timezone} ({_utc_offset_text(ours)}) matches the Khanza server's clock"
    return False, (f"the Khanza server's clock is {_utc_offset_text(theirs)} but HOSPITAL_TIMEZONE="
                   f"{settings.hospital_timezone} is {_utc_offset_text(ours)}: set HOSPITAL_TIMEZONE to the hospital's "
                   f"zone at {_utc_offset_text(theirs)} (WIB Asia/Jakarta +07:00, WITA Asia/Makassar +08:00, WIT "
                   "Asia/Jayapura +09:00), or, if that zone is right, fix the MariaDB server's time_zone")
