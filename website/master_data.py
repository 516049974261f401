"""The website's copy of Khanza's master data: clinics, doctors, weekly schedules and remaining quota.

Every publish replaces all rows of the four tables in one transaction, so the website always reads one
consistent snapshot (and publishing twice leaves the same rows).
"""
from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import Date, DateTime, Engine, bindparam, inspect, text

from khanza_sync.settings import PROJECT_ROOT
from website.store import none_if_missing
from khanza_sync.sqlfiles import statements

DDL_FILES = {
    "postgresql": PROJECT_ROOT / "sql" / "website_master_postgresql.sql",
    "sqlite": PROJECT_ROOT / "sql" / "website_master_sqlite.sql",
}
TABLES = {
    "khanza_clinics": ["kd_poli", "nm_poli", "slug"],
    "khanza_doctors": ["kd_dokter", "nm_dokter", "kd_sps", "nm_sps", "slug"],
    "khanza_schedules": ["kd_dokter", "kd_poli", "hari_kerja", "jam_mulai", "jam_selesai", "kuota"],
    "khanza_quota": ["visit_date", "kd_dokter", "kd_poli", "hari_kerja", "kuota", "registered", "remaining"],
}


def create_tables(engine: Engine) -> None:
    """Create the tables when one is missing. When all exist nothing is run: PostgreSQL refuses even
    `CREATE TABLE IF NOT EXISTS` to a role without CREATE on the schema, as the pipeline's role is."""
    if set(TABLES) <= set(inspect(engine).get_table_names()):
        return
    with engine.begin() as conn:
        for stmt in statements(DDL_FILES[engine.dialect.name]):
            conn.exec_driver_sql(stmt)


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
    with engine.begin() as conn:
        for table, columns in TABLES.items():
            conn.execute(text(f"DELETE FROM {table}"))
            frame = frames.get(table)
            rows = [] if frame is None else [
                {**{c: _clean(r.get(c)) for c in columns}, "published_at": now} for r in frame.to_dict("records")]
            if rows:
                binds = [bindparam("published_at", type_=DateTime())]
                if "visit_date" in columns:
                    binds.append(bindparam("visit_date", type_=Date()))
                cols = columns + ["published_at"]
                stmt = text(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"
                            ).bindparams(*binds)
                conn.execute(stmt, rows)
            written[table] = len(rows)
    return written


def read_table(engine: Engine, table: str) -> pd.DataFrame:
    if table not in TABLES:
        raise ValueError(table)
    with engine.connect() as conn:
        return pd.read_sql(text(f"SELECT * FROM {table}"), conn)
