"""The website backlog: N pending registrations for the next 7 days (half existing patients found by NIK,
half new, 10% BPJS, 5% invalid), written into a SQLite website store made from the shipped DDL.

`generate` also returns the ground truth of every valid row (Khanza codes, existing no_rkm_medis) so the
reference loaders can do the same inserts without the pipeline's checks and mapping.
Values are fake and are never printed.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert

from bench import common as C

FIRST = ["Andi", "Budi", "Citra", "Dewi", "Eko", "Fitri", "Gilang", "Hana", "Indra", "Joko", "Kartika", "Lukman",
         "Maya", "Nur", "Okta", "Putri", "Rudi", "Siti", "Tono", "Wati"]
LAST = ["Santoso", "Wijaya", "Lestari", "Pratama", "Hidayat", "Saputra", "Kurniawan", "Rahayu", "Setiawan", "Wibowo"]
INVALID_KINDS = ["nik", "phone", "visit_passed", "bpjs_without_card", "unknown_poli"]
COLUMNS = ["id", "created_at", "nik", "full_name", "birth_date", "gender", "phone", "address", "birth_place",
           "mother_name", "email", "poliklinik", "doctor", "visit_date", "payment", "bpjs_number",
           "local_queue_number"]


@dataclass
class Truth:
    """What a valid registration must become (for the reference loaders and the verification)."""

    id: str
    kd_poli: str
    kd_dokter: str
    kd_pj: str
    visit_date: date
    existing_rm: str | None  # None = a new patient
    reg: dict  # normalised values, as the pipeline's mapping stage would hand them to the loader


def generate(n: int, today: date, seed: int = 20261127) -> tuple[list[tuple], list[Truth], dict[str, int]]:
    rnd = random.Random(seed)
    days = C.backlog_days(today)
    now_utc = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    n_invalid = n * 5 // 100
    n_valid = n - n_invalid
    n_existing = n_valid // 2
    n_bpjs = n // 10
    # existing patients: each at most once (so nothing is a same-day duplicate); BPJS ones carry their card
    with_card = [k for k in range(3, C.N_PATIENTS + 1, 3)]
    without_card = [k for k in range(1, C.N_PATIENTS + 1) if k % 3]
    existing_bpjs = n_bpjs // 2
    existing = [(k, True) for k in rnd.sample(with_card, existing_bpjs)] + \
               [(k, False) for k in rnd.sample(without_card, n_existing - existing_bpjs)]
    kinds = ["existing"] * n_existing + ["new"] * (n_valid - n_existing) + ["invalid"] * n_invalid
    rnd.shuffle(kinds)
    rnd.shuffle(existing)
    new_bpjs_left = n_bpjs - existing_bpjs
    rows, truths = [], []
    counts = {"existing": 0, "new": 0, "invalid": 0, "bpjs": 0}
    for i, kind in enumerate(kinds):
        doc = rnd.randrange(C.N_DOCTORS)
        day = rnd.choice([d for d in days if d.weekday() != C.doctor_day_off(doc)])
        kd_poli, slug, _ = C.CLINICS[C.doctor_clinic(doc)]
        birth = date(1940, 1, 1) + timedelta(days=rnd.randrange(30000))
        reg = {
            "id": f"bench-{i:07d}",
            "created_at": now_utc - timedelta(seconds=rnd.randrange(60, 36 * 3600)),
            "full_name": f"{rnd.choice(FIRST)} {rnd.choice(LAST)}",
            "birth_date": birth, "gender": rnd.choice(["Laki-laki", "Perempuan", "L", "P"]),
            "phone": f"08{rnd.randrange(10**9, 10**10)}", "address": f"Jl. Pemuda No. {rnd.randrange(1, 300)}, Klaten",
            "birth_place": "Klaten", "mother_name": "Sri", "email": None,
            "poliklinik": slug, "doctor": C.doctor_slug(doc), "visit_date": day, "payment": "umum",
            "bpjs_number": None, "local_queue_number": None,
        }
        existing_rm = None
        if kind == "existing":
            k, card = existing.pop()
            existing_rm = f"{k:06d}"
            reg["nik"] = f"3310{k:012d}"
            if card:
                reg["payment"], reg["bpjs_number"] = "bpjs", f"0001{k:09d}"
        elif kind == "new":
            reg["nik"] = f"3320{i:012d}"
            if new_bpjs_left > 0:
                new_bpjs_left -= 1
                reg["payment"], reg["bpjs_number"] = "bpjs", f"0002{i:09d}"
        else:
            reg["nik"] = f"3320{i:012d}"
            bad = INVALID_KINDS[counts["invalid"] % len(INVALID_KINDS)]
            if bad == "nik":
                reg["nik"] = reg["nik"][:15]
            elif bad == "phone":
                reg["phone"] = "12345"
            elif bad == "visit_passed":
                reg["visit_date"] = today - timedelta(days=1)
            elif bad == "bpjs_without_card":
                reg["payment"] = "bpjs"
            else:
                reg["poliklinik"] = "poli-tidak-ada"
        counts[kind] += 1
        counts["bpjs"] += reg["payment"] == "bpjs"
        rows.append(tuple(reg[c] for c in COLUMNS))
        if kind != "invalid":
            kd_pj = {"umum": "A09", "bpjs": "BPJ"}[reg["payment"]]
            norm = {**reg, "gender": "L" if reg["gender"] in ("L", "Laki-laki") else "P", "kd_poli": kd_poli,
                    "kd_dokter": C.doctor_code(doc), "kd_pj": kd_pj}
            truths.append(Truth(reg["id"], kd_poli, C.doctor_code(doc), kd_pj, day, existing_rm, norm))
    return rows, truths, counts


def fill(path: Path, rows: list[tuple]) -> None:
    """A fresh website store at `path` (the project's SQLite DDL), holding `rows` as pending."""
    from khanza_sync import ownership
    from website import store
    from website.schema import registrations

    url = ownership.fresh_website_store(f"sqlite:///{path}", "benchmark website store")  # refused unless ours
    engine = store.make_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(registrations), [dict(zip(COLUMNS, row)) for row in rows])
    engine.dispose()
