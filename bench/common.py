"""Shared bits of the benchmark: names, paths, the bench master data, environment for child runs.

Everything the benchmark creates lives in its own MariaDB databases (`khanza_bench`, `khanza_bench_small`) on the
project's private MariaDB (khanza_sync/localdb.py, never the machine's own server; replaced only when Khanza Sync
built them, khanza_sync/ownership.py) and under `bench/out/` (git-ignored). Patient data here is generated and fake, but is treated as real:
nothing in the benchmark prints a name, NIK, phone or address, only counts and timings.
"""
from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
MAPPINGS_DIR = OUT / "mappings"
PREFECT_HOME = OUT / "prefect_home"

BIG_DB = "khanza_bench"
SMALL_DB = "khanza_bench_small"
TZ = ZoneInfo("Asia/Jakarta")

N_PATIENTS = 200_000
N_VISITS_BIG = 1_000_000
N_VISITS_SMALL = 10_000
VISITS_PER_DAY = 914  # 1,000,000 visits / 914 per day = 1,095 days = three years
BOOKING_SHARE = 10  # every 10th historical visit came through an online booking (booking_registrasi history)
KUOTA = 600  # per doctor-session: large, so the quota is checked but never rejects in the benchmark

# 12 clinics (kd_poli, website slug, name)
CLINICS = [
    ("INT", "penyakit-dalam", "Poli Penyakit Dalam"), ("BEDAH", "bedah", "Poli Bedah"),
    ("ANAK", "anak", "Poli Anak"), ("OBG", "kandungan", "Poli Kandungan"), ("MATA", "mata", "Poli Mata"),
    ("KULIT", "kulit-dan-kelamin", "Poli Kulit dan Kelamin"), ("SARAF", "saraf", "Poli Saraf"),
    ("ORTHO", "orthopedi", "Poli Orthopedi"), ("GIGI", "gigi", "Poli Gigi"),
    ("THT", "telinga-hidung-tenggorokan", "Poli THT"), ("JTG", "jantung", "Poli Jantung"),
    ("PARU", "paru", "Poli Paru"),
]
N_DOCTORS = 40
HARI = ("SENIN", "SELASA", "RABU", "KAMIS", "JUMAT", "SABTU", "AKHAD")


def doctor_code(i: int) -> str:  # i = 0..39
    return f"D{i + 1:03d}"


def doctor_slug(i: int) -> str:
    return f"dr-bench-{i + 1:03d}"


def doctor_clinic(i: int) -> int:
    """Index into CLINICS of doctor i's clinic (every clinic has 3-4 doctors)."""
    return i % len(CLINICS)


def doctor_day_off(i: int) -> int:
    """Weekday (0 = Monday) doctor i does not practise: a real weekly schedule, six days a week."""
    return i % 7


def hospital_now() -> datetime:
    return datetime.now(TZ).replace(tzinfo=None)


def hospital_today() -> date:
    return hospital_now().date()


def backlog_days(today: date, n_days: int = 7) -> list[date]:
    """The 7 visit days of the backlog: tomorrow .. today+7 (same-day registrations close at noon)."""
    return [today + timedelta(days=k) for k in range(1, n_days + 1)]


def website_db(name: str) -> Path:
    return OUT / f"website_{name}.db"


def child_env(khanza_db: str, website: Path, extra: dict | None = None) -> dict[str, str]:
    from khanza_sync import localdb

    env = dict(os.environ)
    env.update(localdb.coordinates().client_env())  # the private MariaDB, whatever .env or the shell say
    env.update({
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_HOME": str(PREFECT_HOME),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "KHANZA_DB_NAME": khanza_db,
        "WEBSITE_DB_URL": f"sqlite:///{website}",
        "MAPPINGS_DIR": str(MAPPINGS_DIR),
        "KHANZA_RETRY_DELAY_SECONDS": "1",
    })
    env.update(extra or {})
    return env


def write_mappings() -> None:
    MAPPINGS_DIR.mkdir(parents=True, exist_ok=True)
    (MAPPINGS_DIR / "poliklinik.yaml").write_text("".join(f"{slug}: {kd}\n" for kd, slug, _ in CLINICS))
    (MAPPINGS_DIR / "dokter.yaml").write_text(
        "".join(f"{doctor_slug(i)}: {doctor_code(i)}\n" for i in range(N_DOCTORS)))
    (MAPPINGS_DIR / "penjab.yaml").write_text("umum: A09\nbpjs: BPJ\nasuransi: A92\n")


def first_row(cur, sql: str, *params) -> tuple:
    """Run `sql` on the (PyMySQL) cursor `cur` and return its first row."""
    cur.execute(sql, params or None)
    return cur.fetchone()
