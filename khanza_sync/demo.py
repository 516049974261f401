"""`khanza-sync demo`: a demo Khanza database on the project's own MariaDB (khanza_sync/localdb.py), a SQLite
website store with sample registrations (some deliberately invalid), one sync run, then what landed on both sides.

Uses its own databases (Khanza `khanza_demo` on the private server, website `data/demo_website.db`), whatever
the environment or `.env` say, and replaces them only if Khanza Sync created them (khanza_sync/ownership.py).
"""
from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
from sqlalchemy import insert, text

from khanza.db import make_engine
from khanza.setup import check_replaceable, create_demo_database, private_server_settings
from khanza_sync import ownership
from khanza_sync.settings import PROJECT_ROOT, load_settings
from website import store
from website.schema import registrations

WEBSITE_DB = PROJECT_ROOT / "data" / "demo_website.db"
DEMO_KHANZA_DB = "khanza_demo"


def sample_registrations(today: date) -> list[dict]:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    tomorrow = today + timedelta(days=1)
    base = dict(created_at=now - timedelta(minutes=30), birth_place="Klaten", mother_name=None, email=None,
                visit_date=tomorrow, payment="umum", bpjs_number=None, local_queue_number=None)
    rows = [
        dict(id="demo-001", nik="3310010101900001", full_name="Andi Wijaya", birth_date=date(1990, 1, 1),
             gender="Laki-laki", phone="0812-1111-0001", address="Jl. Pemuda 1, Klaten",
             poliklinik="penyakit-dalam", doctor="dr-ahmad-sppd", local_queue_number="LCL-0001"),
        dict(id="demo-002", nik="3310014107800001", full_name="Siti Aminah", birth_date=date(1980, 7, 1),
             gender="Perempuan", phone="+62 812 3450 0001", address="Jl. Merapi 10", poliklinik="penyakit-dalam",
             doctor="dr-ahmad-sppd", payment="bpjs", bpjs_number="0001234567890"),
        dict(id="demo-003", nik="3310015505150002", full_name="Nur Aisyah", birth_date=date(2024, 5, 15),
             gender="P", phone="6281211110003", address="Desa Dukuh RT 2", poliklinik="anak",
             doctor="dr-citra-spa"),
        dict(id="demo-004", nik="3310012020200004", full_name="José Müller", birth_date=date(1975, 12, 20),
             gender="male", phone="0813 2222 0004", address="Perum Griya Asri B-4", poliklinik="kandungan",
             doctor="dr-dewi-spog", payment="asuransi"),
        # deliberately invalid
        dict(id="demo-005", nik="33100A0101900005", full_name="Nik Salah", birth_date=date(1990, 1, 1),
             gender="L", phone="0812-1111-0005", address="Jl. Salah 5", poliklinik="mata", doctor="dr-eko-spm"),
        dict(id="demo-006", nik="3310010101900006", full_name="Poli Tidak Ada", birth_date=date(1990, 1, 1),
             gender="L", phone="0812-1111-0006", address="Jl. Salah 6", poliklinik="jantung", doctor="dr-eko-spm"),
        dict(id="demo-007", nik="3310010101900007", full_name="Bpjs Tanpa Kartu", birth_date=date(1990, 1, 1),
             gender="L", phone="0812-1111-0007", address="Jl. Salah 7", poliklinik="mata", doctor="dr-eko-spm",
             payment="bpjs"),
        dict(id="demo-008", nik="3310010101900008", full_name="Tanggal Lewat", birth_date=date(1990, 1, 1),
             gender="L", phone="0812-1111-0008", address="Jl. Salah 8", poliklinik="mata", doctor="dr-eko-spm",
             visit_date=today - timedelta(days=2)),
    ]
    return [{**base, **row} for row in rows]


def main(khanza_db: str = DEMO_KHANZA_DB, website_db: Path = WEBSITE_DB) -> None:
    # The demo's own databases on the private servers, whatever the environment or .env say; the sync flow
    # reads them from the environment (which wins over .env).
    private = private_server_settings(khanza_db)
    website_url = f"sqlite:///{website_db}"
    check_replaceable(private, khanza_db)  # both refused before anything changes
    ownership.check_website_replaceable(website_url)
    os.environ.update({"KHANZA_DB_HOST": private.khanza_db_host, "KHANZA_DB_PORT": str(private.khanza_db_port),
                       "KHANZA_DB_USER": private.khanza_db_user, "KHANZA_DB_PASSWORD": "",
                       "KHANZA_DB_NAME": khanza_db, "WEBSITE_DB_URL": website_url})
    settings = load_settings()
    print(f"1/4 demo Khanza database '{settings.khanza_db_name}' on {settings.khanza_db_host}:{settings.khanza_db_port}")
    create_demo_database(settings, settings.khanza_db_name)

    print(f"2/4 website store {website_db} with sample registrations")
    ownership.fresh_website_store(website_url, "demo website store")
    web = store.make_engine(website_url)
    today = datetime.now(settings.tz).date()
    with web.begin() as conn:
        conn.execute(insert(registrations), sample_registrations(today))

    print("3/4 one sync run")
    from khanza_sync.cli import main as cli_main

    cli_main(["sync"])

    print("\n4/4 website rows after the run")
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 60)
    rows = store.fetch_rows(web)[["id", "status", "local_queue_number", "no_rkm_medis", "no_rawat", "no_reg",
                                  "error_code", "last_error"]]
    print(rows.astype(object).where(rows.notna(), "").to_string(index=False))
    print("\nKhanza reg_periksa rows written")
    with make_engine(settings).connect() as conn:
        visits = pd.read_sql(text("SELECT no_rawat, no_reg, tgl_registrasi, kd_dokter, kd_poli, no_rkm_medis, "
                                  "stts_daftar, status_poli, biaya_reg, kd_pj, umurdaftar, sttsumur "
                                  "FROM reg_periksa ORDER BY no_rawat"), conn)
    print(visits.to_string(index=False))


if __name__ == "__main__":
    main()
