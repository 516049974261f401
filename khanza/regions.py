"""Khanza's region rows (kelurahan, kecamatan, kabupaten, propinsi) for a new patient: found by name, or added
where missing, as Khanza's own new-patient paths do (Mobile JKN `pasienbaru`, webapps/api-bpjsfktl/index.php, and
the booking acceptance: `insert ignore into kelurahan values('0', name)`, then the id looked up by name;
shared/khanza/rules.md §7).

Two differences, both so that the hospital's tables are not polluted: every spelling the hospital's rows may
already use is looked for first (`khanza_sync.regions.spellings`: `KAB. KLATEN` and `KABUPATEN KLATEN` are
`KLATEN`), and the id is left to AUTO_INCREMENT by naming only the name column (Khanza's '0' means the same on a
normal server; on one running with NO_AUTO_VALUE_ON_ZERO it would collide with kecamatan's id-0 row). The caller
holds the pipeline's numbering lock and the registration's transaction: a registration that fails adds nothing,
and a name the desk adds meanwhile is found by the locking read after the duplicate key.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, bindparam, exc, text

from khanza.db import mysql_code
from khanza_sync.regions import LEVELS, Level, spellings


@dataclass
class Place:
    """A new patient's region as Khanza stores it: per level (khanza_sync.regions.LEVELS names) the row's id and
    name; `added` names the levels whose row this registration inserted."""

    ids: dict[str, object] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)


def _find(conn: Connection, level: Level, names: list[str], locking: bool = False):
    stmt = text(f"SELECT {level.id_column}, {level.name_column} FROM {level.table} "
                f"WHERE {level.name_column} IN :names ORDER BY {level.id_column}"
                + (" LOCK IN SHARE MODE" if locking else "")).bindparams(bindparam("names", expanding=True))
    return conn.execute(stmt, {"names": names}).all()


def find_or_add(conn: Connection, level: Level, name: str) -> tuple[object, str, bool]:
    """(id, the name as the row spells it, whether this call inserted the row) for `name` (Khanza's form)."""
    rows = _find(conn, level, spellings(level.name, name))
    if rows:  # the hospital's own spelling wins; the exact one first when several spellings exist
        exact = [r for r in rows if str(r[1]).strip().upper() == name]
        row = (exact or rows)[0]
        return row[0], row[1], False
    try:
        conn.execute(text(f"INSERT INTO {level.table} ({level.name_column}) VALUES (:name)"), {"name": name})
        added = True
    except exc.IntegrityError as error:
        if mysql_code(error) != 1062:
            raise
        added = False  # the desk added it a moment ago
    row = _find(conn, level, [name], locking=True)[0]
    return row[0], row[1], added


def place_of(conn: Connection, names: dict[str, str | None], placeholders: dict[str, object]) -> Place:
    """The Place of a new patient from the registration's region names (None: not given): Khanza's '-' row for a
    level not given, as today."""
    place = Place()
    for level in LEVELS:
        name = names.get(level.name)
        if not name:
            place.ids[level.name], place.names[level.name] = placeholders[level.id_column], "-"
            continue
        place.ids[level.name], place.names[level.name], added = find_or_add(conn, level, name)
        if added:
            place.added.append(level.name)
    return place


def known(conn: Connection) -> dict[str, list[tuple[object, str]]]:
    """Every region row Khanza has, per level, less the '-' placeholders: what publish-master-data gives the
    website."""
    return {level.name: [(r[0], r[1]) for r in conn.execute(text(
        f"SELECT {level.id_column}, {level.name_column} FROM {level.table} "
        f"WHERE {level.name_column} <> '-' ORDER BY {level.name_column}, {level.id_column}"))]
        for level in LEVELS}
