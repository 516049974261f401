"""The website's copy of Khanza's master data: clinics, doctors, weekly schedules, remaining quota and the region
names Khanza knows.

Every publish replaces all rows of the tables in one transaction, so the website always reads one
consistent snapshot (and publishing twice leaves the same rows).
"""
from __future__ import annotations

from datetime import datetime

import pandas as pd
import logging

from sqlalchemy import Engine, delete, exc, insert, inspect, select

from website import schema
from website.store import none_if_missing

log = logging.getLogger(__name__)

_TABLES = {table.name: table for table in schema.MASTER_TABLES}
TABLES = {name: [c.name for c in table.c if c.name != "published_at"] for name, table in _TABLES.items()}


# Added after the first release: a website whose owner created the older tables (and gave the pipeline no CREATE
# right) publishes everything else until the owner adds it from sql/website_master_*.sql.
LATER = {schema.region_names.name}


def create_tables(engine: Engine) -> None:
    """Create the tables that are missing. When all exist nothing is run: PostgreSQL refuses even
    `CREATE TABLE IF NOT EXISTS` to a role without CREATE on the schema, as the pipeline's role is."""
    missing = [t for t in schema.MASTER_TABLES if t.name not in set(inspect(engine).get_table_names())]
    if not missing:
        return
    try:
        schema.create(engine, missing)
    except exc.DBAPIError:
        if not {t.name for t in missing} <= LATER:
            raise
        log.warning("website table(s) %s missing and not creatable with this account: published without them; "
                    "run sql/website_master_*.sql as the owner", ", ".join(sorted(t.name for t in missing)))


def _clean(value):
    """pandas/numpy values as plain Python for the driver (NaN -> NULL, 3.0 -> 3)."""
    value = none_if_missing(value)
    if value is None:
        return None
    value = value.item() if hasattr(value, "item") else value
    return int(value) if isinstance(value, float) and value.is_integer() else value


def replace_all(engine: Engine, frames: dict[str, pd.DataFrame], now: datetime) -> dict[str, int]:
    """Replace the rows of each table with `frames[table]` (columns as in TABLES). Returns rows written."""
    written = {}
    present = set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        for name, columns in TABLES.items():
            if name not in present:  # a LATER table the owner has not added yet (create_tables said so)
                continue
            conn.execute(delete(_TABLES[name]))
            frame = frames.get(name)
            rows = [] if frame is None else [
                {**{c: _clean(r.get(c)) for c in columns}, "published_at": now} for r in frame.to_dict("records")]
            if rows:
                conn.execute(insert(_TABLES[name]), rows)
            written[name] = len(rows)
    return written


def replace_quota(engine: Engine, frame: pd.DataFrame, days, now: datetime) -> int:
    """Replace the khanza_quota rows of `days` only (one transaction), leaving other days as published.
    Returns rows written."""
    table, columns = _TABLES["khanza_quota"], TABLES["khanza_quota"]
    rows = [{**{c: _clean(r.get(c)) for c in columns}, "published_at": now} for r in frame.to_dict("records")]
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.visit_date.in_(sorted(days))))
        if rows:
            conn.execute(insert(table), rows)
    return len(rows)


def read_table(engine: Engine, table: str) -> pd.DataFrame:
    if table not in TABLES:
        raise ValueError(table)
    with engine.connect() as conn:
        return pd.read_sql(select(_TABLES[table]), conn)
