"""The version of the website contract: which columns of online_registrations a release reads and writes, in the
order releases added them, and the in-place upgrade of a table the project made.

The website team often owns the table (a Laravel or CodeIgniter migration), and the pipeline's account may not
read anything but that table, so the version is read from the table's columns: version N is there when every
column up to N's step is. `khanza-sync setup --website` adds what a later step needs only to a table it created
itself (recorded in `khanza_sync_contract`, a table of its own beside it); to any other table it prints the
statements for the website team (`upgrade_sql`), as docs/website.md and CHANGELOG.md give them. A step only ever
adds nullable columns, so the website's own INSERTs keep working, and is never changed once released.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, inspect, select
from sqlalchemy.schema import CreateTable

from khanza_sync import regions
from website import schema


@dataclass(frozen=True)
class ContractStep:
    version: int
    summary: str
    columns: tuple[str, ...]  # columns of schema.registrations this step adds
    # The website's optional fields: a table without them is still read (as empty) and the jobs run; only
    # `khanza-sync check` says they are absent. A step the pipeline cannot work without is not optional.
    optional: bool = False


_FIRST = tuple(c.name for c in schema.registrations.columns
               if c.name != schema.CLAIM_TOKEN and c.name not in regions.CONTRACT_COLUMNS)
STEPS: tuple[ContractStep, ...] = (
    ContractStep(1, "the registration, the pipeline's state and Khanza's numbers", _FIRST),
    ContractStep(2, "where the patient lives: Kemendagri codes and/or names of village, district, regency and "
                    "province (optional)", regions.CONTRACT_COLUMNS, optional=True),
)
CURRENT = STEPS[-1].version
TABLE = schema.registrations.name

# The project's record of the website tables it created (so a later release may extend them in place).
_marker_metadata = MetaData()
MARKER = Table("khanza_sync_contract", _marker_metadata,
               Column("table_name", String(64), primary_key=True),
               Column("version", Integer, nullable=False),
               Column("upgraded_at", DateTime, nullable=False))


class TableNotOurs(RuntimeError):
    """The website's table was made by someone else: its owner applies the statements."""


def found_version(present: set[str]) -> int:
    """The contract version a table with these columns carries (0: not even the first)."""
    found = 0
    for step in STEPS:
        if not set(step.columns) <= present:
            break
        found = step.version
    return found


def columns_of(engine: Engine) -> set[str] | None:
    found = inspect(engine)
    if not found.has_table(TABLE):
        return None
    return {c["name"] for c in found.get_columns(TABLE)}


def missing(present: set[str]) -> list[str]:
    """Columns this release needs that the table lacks, in the contract's order."""
    return [name for step in STEPS for name in step.columns if name not in present]


def required_missing(present: set[str]) -> list[str]:
    """Columns the jobs cannot run without that the table lacks (the optional steps' are read as empty)."""
    return [name for step in STEPS if not step.optional for name in step.columns if name not in present]


def optional_missing(present: set[str]) -> list[str]:
    """The optional steps' columns the table lacks (read as empty until the website adds them)."""
    return [name for step in STEPS if step.optional for name in step.columns if name not in present]


def upgrade_sql(dialect_name: str, present: set[str]) -> list[str]:
    """ALTER TABLE statements that bring a table with columns `present` to CURRENT, for `dialect_name`."""
    dialect = schema.DIALECTS[schema.family(dialect_name)]
    table = schema.mysql_table(schema.registrations) if schema.family(dialect_name) == "mysql" else \
        schema.registrations
    out = []
    for name in missing(present):
        column = table.c[name]
        kind = column.type.compile(dialect=dialect)
        out.append(f"ALTER TABLE {TABLE} ADD COLUMN {name} {kind}")
    return out


def _marked(conn) -> int | None:
    if not inspect(conn).has_table(MARKER.name):
        return None
    return conn.execute(select(MARKER.c.version).where(MARKER.c.table_name == TABLE)).scalar()


def _mark(conn, version: int) -> None:
    conn.exec_driver_sql(str(CreateTable(MARKER, if_not_exists=True).compile(dialect=conn.dialect)))
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    if _marked(conn) is None:
        conn.execute(MARKER.insert().values(table_name=TABLE, version=version, upgraded_at=now))
    else:
        conn.execute(MARKER.update().where(MARKER.c.table_name == TABLE).values(version=version, upgraded_at=now))


def setup(engine: Engine) -> list[str]:
    """`khanza-sync setup --website`: create the table where missing (and record it as the project's), or bring
    the project's own table up to CURRENT in place. Returns the statements run. A table someone else made and
    that lacks columns is refused (TableNotOurs) with the statements its owner applies; nothing is changed."""
    present = columns_of(engine)
    if present is None:
        schema.create(engine, schema.REGISTRATION_TABLES)
        with engine.begin() as conn:
            _mark(conn, CURRENT)
        return ["CREATE TABLE " + TABLE]
    statements = upgrade_sql(engine.dialect.name, present)
    with engine.begin() as conn:
        ours = _marked(conn) is not None
    if statements and not ours and not required_missing(present):
        return []  # only an optional step's columns are absent: the table works as it is; its owner adds them
    if statements and not ours:
        raise TableNotOurs(f"{TABLE} was not made by khanza-sync setup, so it is not changed: its owner applies "
                           f"(docs/website.md, 'Upgrading the contract'): " + "; ".join(statements))
    if not ours:
        return []  # up to date, and the website team's: nothing of theirs is touched (not even an index)
    with engine.begin() as conn:
        for stmt in statements:
            conn.exec_driver_sql(stmt)
        _mark(conn, CURRENT)
    schema.create(engine, schema.REGISTRATION_TABLES)  # its indexes and trigger where missing (IF NOT EXISTS)
    return statements
