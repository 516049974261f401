"""Pandas rules that run before the Great Expectations suite: they put the website's free-form values
into the shape Khanza stores (gender L/P, phone 08..., real dates, latin1 text) and compute the
helper columns the suite checks (days ahead, same-day cut-off). Nothing here rejects a row: values
that cannot be normalised become missing, and the suite says why.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime

import pandas as pd
from text_unidecode import unidecode

from khanza_sync import regions
from khanza_sync.error_codes import ErrorCode
from khanza_sync.rules import ADDRESS_MAX, BPJS_PAYMENT, EMAIL_MAX, MOTHER_MAX, PLACE_MAX, shorten

GENDERS = {"l": "L", "p": "P", "laki-laki": "L", "laki laki": "L", "lakilaki": "L", "perempuan": "P",
           "male": "L", "female": "P", "pria": "L", "wanita": "P", "m": "L", "f": "P"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")
_PHONE_JUNK = re.compile(r"[\s\-\.\(\)/]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def to_latin1(value: str) -> str:
    """Keep latin1 characters as they are; transliterate the rest (é stays, ő -> o, 张 -> Zhang)."""
    out = []
    for ch in value:
        try:
            ch.encode("latin-1")
            out.append(ch)
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", ch)
            try:
                out.append(base.encode("latin-1", "ignore").decode("latin-1") or unidecode(ch))
            except UnicodeError:
                out.append(unidecode(ch))
    return "".join(out)


def _missing(value) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def clean_text(value) -> str | None:
    """NFC, control characters (NUL included) dropped, whitespace folded, latin1; None when empty."""
    if _missing(value):
        return None
    text = unicodedata.normalize("NFC", str(value))
    text = _CONTROL.sub(" ", text)
    text = _SPACES.sub(" ", to_latin1(text)).strip()
    return text or None


def normalize_phone(value) -> str | None:
    """'+62 812-3456-7890', '62812...', '0812 3456 7890', '812...' -> '081234567890'."""
    text = clean_text(value)
    if text is None:
        return None
    digits = _PHONE_JUNK.sub("", text)
    if digits.startswith("+"):
        digits = digits[1:]
    if digits.startswith("62"):
        digits = "0" + digits[2:]
    elif digits.startswith("8"):
        digits = "0" + digits
    return digits


def parse_dates(series: pd.Series) -> pd.Series:
    """Any date-like value -> python date; impossible dates ('2026-02-30') and junk -> None."""
    as_text = pd.Series([None if _missing(v) else str(v)[:10] for v in series], index=series.index, dtype="object")
    parsed = pd.to_datetime(as_text, format="%Y-%m-%d", errors="coerce")
    return pd.Series([None if pd.isna(v) else v.date() for v in parsed], index=series.index, dtype="object")


def parse_utc(series: pd.Series) -> pd.Series:
    as_text = pd.Series([None if _missing(v) else str(v) for v in series], index=series.index, dtype="object")
    return pd.to_datetime(as_text, errors="coerce", utc=True, format="mixed")


def _regions(df: pd.DataFrame, out: pd.DataFrame) -> None:
    """The patient's region in Khanza's form (khanza_sync/regions.py): one name column per level (None when not
    given), and the helper columns the suite checks. A row without region columns is as before: all None."""
    names = {level.name: [] for level in regions.LEVELS}
    invalid, inconsistent = [], []
    for i in range(len(df)):
        given = {c: clean_text(df[c].iloc[i]) for c in regions.CONTRACT_COLUMNS if c in df.columns}
        resolved, code = {}, None
        if regions.given(given):
            try:
                resolved = regions.resolve(given)
            except regions.RegionError as error:
                code = error.code
        for level in regions.LEVELS:
            names[level.name].append(resolved.get(level.name))
        invalid.append(code == ErrorCode.INVALID_REGION)
        inconsistent.append(code == ErrorCode.INCONSISTENT_REGION)
    for name, values in names.items():
        out[name] = pd.Series(values, index=df.index, dtype="object")
    out["region_invalid"] = pd.Series(invalid, index=df.index, dtype=bool)
    out["region_inconsistent"] = pd.Series(inconsistent, index=df.index, dtype=bool)


def normalize(df: pd.DataFrame, *, now_local: datetime, tz, cutoff_hour: int | None,
              max_skew_seconds: float = 300) -> pd.DataFrame:
    """The registration frame in Khanza's shapes plus helper columns for the suite. `max_skew_seconds`: how far
    ahead of the pipeline's clock a `created_at` (UTC) may lie before the website's clock counts as wrong."""
    out = pd.DataFrame({"id": df["id"].astype("object")})

    def each(column: str, *steps) -> pd.Series:
        values = []
        for value in df[column]:
            for step in steps:
                value = step(value) if value is not None else None
            values.append(value)
        return pd.Series(values, index=df.index, dtype="object")

    out["nik"] = each("nik", clean_text, lambda v: v.replace(" ", ""))
    out["full_name"] = each("full_name", clean_text)
    out["gender"] = each("gender", clean_text, lambda g: GENDERS.get(g.lower()))
    out["birth_date"] = parse_dates(df["birth_date"])
    out["phone"] = each("phone", normalize_phone)
    out["address"] = each("address", clean_text, lambda a: shorten(a, ADDRESS_MAX))
    out["birth_place"] = each("birth_place", clean_text, lambda a: shorten(a, PLACE_MAX))
    out["mother_name"] = each("mother_name", clean_text, lambda a: shorten(a, MOTHER_MAX))
    out["email"] = each("email", clean_text, lambda e: e if len(e) <= EMAIL_MAX and _EMAIL.match(e) else None)
    out["poliklinik"] = df["poliklinik"].astype("object")
    out["doctor"] = df["doctor"].astype("object")
    out["visit_date"] = parse_dates(df["visit_date"])
    out["payment"] = each("payment", clean_text, str.lower)
    out["bpjs_number"] = each("bpjs_number", clean_text, lambda v: v.replace(" ", ""))
    # A card number only matters (and is only checked) for BPJS payment; on other payments it is dropped,
    # so an unchecked value never reaches pasien.no_peserta or patient matching.
    out.loc[out["payment"] != BPJS_PAYMENT, "bpjs_number"] = None
    out["attempts"] = df["attempts"]
    _regions(df, out)

    # Helper columns (the suite checks them; they never leave the pipeline)
    today = now_local.date()
    created_utc = parse_utc(df["created_at"])
    created_local = created_utc.dt.tz_convert(tz)
    submitted_day = created_local.dt.date
    # created_at decides the booking window and the same-day cut-off: missing or junk is the website's fault
    # (INVALID_CREATED_AT); ahead of our clock by more than the skew means the website's clock or time zone is
    # off (a local time written as UTC is hours ahead): those rows wait (CREATED_AT_IN_FUTURE).
    now_utc = pd.Timestamp(now_local).tz_localize(tz).tz_convert("UTC")
    ahead = (created_utc - now_utc).dt.total_seconds()
    out["created_ahead_seconds"] = [None if pd.isna(a) else float(a) for a in ahead]
    out["created_in_future"] = [bool(not pd.isna(a) and a > max_skew_seconds) for a in ahead]
    out["birth_days"] = [(today - b).days if b else None for b in out["birth_date"]]
    out["birth_year"] = [b.year if b else None for b in out["birth_date"]]
    out["visit_days_from_today"] = [(v - today).days if v else None for v in out["visit_date"]]
    out["days_ahead_at_submission"] = [
        (v - s).days if v and not pd.isna(s) else None for v, s in zip(out["visit_date"], submitted_day)
    ]
    if cutoff_hour is None:
        out["after_same_day_cutoff"] = False
    else:
        out["after_same_day_cutoff"] = [
            bool(v == s and t.hour >= cutoff_hour) if v and not pd.isna(t) else False
            for v, s, t in zip(out["visit_date"], submitted_day, created_local)
        ]
    out["name_length"] = out["full_name"].map(lambda n: len(n) if n else None)
    return out
