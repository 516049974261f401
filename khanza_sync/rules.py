"""The shape of a registration's values as Khanza stores them: identifier patterns, column sizes and the
word-boundary cut. One home for rules the data checks (`data_checks/`), the Khanza loader (`khanza/`)
and the log filter (`privacy.py`) all apply, so they can never disagree.

Plain Python only: importing this module never imports Prefect, Great Expectations or pandas.
"""
from __future__ import annotations

import re

# ---------------------------------------------------------------- identifiers

NIK_DIGITS = 16  # Nomor Induk Kependudukan
BPJS_DIGITS = 13  # BPJS Kesehatan card number (pasien.no_peserta)

# Anchored regexes, as the Great Expectations suite applies them. A NIK of only zeros is the placeholder
# some forms submit, never a person.
NIK_REGEX = rf"^(?!0{{{NIK_DIGITS}}}$)\d{{{NIK_DIGITS}}}$"
BPJS_REGEX = rf"^\d{{{BPJS_DIGITS}}}$"
NAME_REGEX = r"^[A-Za-zÀ-ÖØ-öø-ÿ][A-Za-zÀ-ÖØ-öø-ÿ .,'`\-]*$"
PHONE_REGEX = r"^0[1-9]\d{7,12}$"

_NIK = re.compile(NIK_REGEX)
_BPJS = re.compile(BPJS_REGEX)


def valid_nik(value) -> bool:
    """`value` is a string that is a NIK: 16 digits, not all zeros (the whole string, no trailing newline)."""
    return isinstance(value, str) and _NIK.fullmatch(value) is not None


def valid_bpjs_number(value) -> bool:
    """`value` is a string of exactly 13 digits."""
    return isinstance(value, str) and _BPJS.fullmatch(value) is not None


# ---------------------------------------------------------------- coded values

GENDER_CODES = ("L", "P")  # pasien.jk
BPJS_PAYMENT = "bpjs"  # the website's payment value that needs a BPJS card
PAYMENTS = ("umum", BPJS_PAYMENT, "asuransi")

# ---------------------------------------------------------------- Khanza column sizes of the text we write

NAME_MAX = 40  # pasien.nm_pasien: a longer name is rejected (NAME_TOO_LONG), never cut
ADDRESS_MAX = 200  # pasien.alamat
PLACE_MAX = 15  # pasien.tmp_lahir
MOTHER_MAX = 40  # pasien.nm_ibu
EMAIL_MAX = 50  # pasien.email
ALAMATPJ_MAX = 100  # pasien.alamatpj (shorter than alamat)
ALMT_PJ_MAX = 200  # reg_periksa.almt_pj


def shorten(value: str | None, limit: int) -> str | None:
    """Cut at the last word boundary that fits (addresses, places): never mid-word when avoidable.
    None stays None."""
    if value is None or len(value) <= limit:
        return value
    cut = value[:limit + 1].rsplit(" ", 1)[0].rstrip(" ,.-")
    return cut if 0 < len(cut) <= limit else value[:limit]
