"""The two reference loaders the pipeline's load stage is compared with, over the same valid registrations.

* database limit: one connection, one transaction per registration doing only the number allocation and
  the inserts (new patient: counter FOR UPDATE, pasien, counter; then no_rawat and no_reg through the
  no_rawat prefix range, reg_periksa, ledger), raw PyMySQL, nothing else. As fast as MariaDB commits.
* naive loader: the way the hospital website does it today: a new connection per registration,
  autocommit, `max()+1` with `WHERE tgl_registrasi = ?` (no index: a scan of reg_periksa) and no lock.

Rows are built with the project's own pure functions (visits.visit_row, patients.new_patient_row) so
every reference writes exactly what the pipeline writes.
"""
from __future__ import annotations

import time

import pymysql
from sqlalchemy import create_engine

from bench.backlog import Truth
from khanza import masterdata, visits
from khanza.db import SESSION_INIT
from khanza.numbering import (
    RmFormat,
    day_range,
    format_no_rawat,
    format_no_reg,
    no_rawat_prefix,
)
from khanza.patients import new_patient_row
from khanza_sync import localdb

LEDGER_COLS = ["registration_id", "outcome", "target", "no_rkm_medis", "no_rawat", "no_reg", "kd_poli",
               "kd_dokter", "tanggal", "patient_created", "created_at"]


def _connect(database: str, autocommit: bool) -> pymysql.Connection:
    where = localdb.coordinates()  # the project's private MariaDB
    return pymysql.connect(host=where.mariadb_host, port=where.mariadb_port, user=where.mariadb_user, password="",
                           database=database, charset="utf8mb4", autocommit=autocommit, init_command=SESSION_INIT)


def _insert_sql(table: str, cols) -> str:
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(f'%({c})s' for c in cols)})"


def _master(database: str) -> masterdata.MasterData:
    where = localdb.coordinates()
    engine = create_engine(f"mysql+pymysql://root@{where.mariadb_host}:{where.mariadb_port}/{database}?charset=utf8mb4")
    with engine.connect() as conn:
        md = masterdata.load(conn)
    engine.dispose()
    return md


def _existing_patient(truth: Truth) -> dict:
    """The patient fields a visit row needs; the reference does not look the patient up (allocation + inserts only)."""
    return {"no_rkm_medis": truth.existing_rm, "tgl_lahir": truth.reg["birth_date"], "tgl_daftar": None,
            "alamat": "JL. MERAPI", "namakeluarga": "KELUARGA", "keluarga": "SUAMI",
            "nm_kel": "DUKUH", "nm_kec": "KLATEN UTARA", "nm_kab": "KLATEN"}


def _new_patient(cur, truth: Truth, md: masterdata.MasterData, today, counter_sql: str) -> dict:
    """A new patient as Khanza makes one: the number after the counter (`counter_sql` reads it), the pasien
    row, the counter moved on. Returns the pasien row."""
    cur.execute(counter_sql)
    rm = RmFormat().next_after(cur.fetchone()[0], today)
    patient = new_patient_row(truth.reg, rm, truth.kd_pj, md, today)
    cur.execute(_insert_sql("pasien", patient), patient)
    cur.execute("DELETE FROM set_no_rkm_medis")
    cur.execute("INSERT INTO set_no_rkm_medis VALUES (%s)", (rm,))
    return patient


def _insert_visit(cur, truth: Truth, md: masterdata.MasterData, clock, patient: dict, created: bool,
                  no_reg: str, no_rawat: str) -> None:
    row = visits.visit_row(no_reg=no_reg, no_rawat=no_rawat, visit_date=truth.visit_date, clock=clock,
                           kd_dokter=truth.kd_dokter, patient=patient, kd_poli=truth.kd_poli,
                           kd_pj=truth.kd_pj, fees=md.active_poli[truth.kd_poli], new_patient=created,
                           first_visit_to_poli=created)
    cur.execute(_insert_sql("reg_periksa", row), row)


def _rate(truths: list[Truth], elapsed: float, **extra) -> dict:
    return {"registrations": len(truths), "seconds": elapsed, "rate": len(truths) / elapsed, **extra}


def database_limit(database: str, truths: list[Truth], clock) -> dict:
    md = _master(database)
    today = clock.date()
    conn = _connect(database, autocommit=False)
    with conn.cursor() as cur:
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    conn.commit()
    statements = 0
    t0 = time.perf_counter()
    with conn.cursor() as cur:
        for truth in truths:
            day = truth.visit_date
            created = truth.existing_rm is None
            if created:
                patient = _new_patient(cur, truth, md, today,
                                       "SELECT no_rkm_medis FROM set_no_rkm_medis LIMIT 1 FOR UPDATE")
                patient = {**patient, "nm_kel": "-", "nm_kec": "-", "nm_kab": "-"}
                statements += 4
            else:
                patient = _existing_patient(truth)
            lo, hi = day_range(day)
            cur.execute("SELECT no_rawat FROM reg_periksa WHERE no_rawat >= %s AND no_rawat < %s "
                        "ORDER BY no_rawat DESC LIMIT 1", (lo, hi))
            last = cur.fetchone()
            no_rawat = format_no_rawat(day, int(last[0][-6:]) + 1 if last else 1)
            cur.execute("SELECT COALESCE(MAX(CAST(no_reg AS SIGNED)), 0) FROM reg_periksa "
                        "WHERE no_rawat >= %s AND no_rawat < %s AND kd_dokter = %s", (lo, hi, truth.kd_dokter))
            no_reg = format_no_reg(int(cur.fetchone()[0]) + 1)
            _insert_visit(cur, truth, md, clock, patient, created, no_reg, no_rawat)
            cur.execute(_insert_sql("khanza_sync_ledger", LEDGER_COLS), {
                "registration_id": truth.id, "outcome": "created", "target": "reg_periksa",
                "no_rkm_medis": patient["no_rkm_medis"], "no_rawat": no_rawat, "no_reg": no_reg,
                "kd_poli": truth.kd_poli, "kd_dokter": truth.kd_dokter, "tanggal": day,
                "patient_created": int(created), "created_at": clock})
            conn.commit()
            statements += 4
    elapsed = time.perf_counter() - t0
    conn.close()
    return _rate(truths, elapsed, statements_per_registration=statements / len(truths))


def naive_loader(database: str, truths: list[Truth], clock) -> dict:
    md = _master(database)
    today = clock.date()
    t0 = time.perf_counter()
    scan_seconds = 0.0
    for truth in truths:
        reg, day = truth.reg, truth.visit_date
        conn = _connect(database, autocommit=True)  # one connection per registration, no transaction
        with conn.cursor() as cur:
            cur.execute("SELECT no_rkm_medis, tgl_lahir, alamat, namakeluarga, keluarga FROM pasien "
                        "WHERE no_ktp = %s", (reg["nik"],))
            found = cur.fetchone()
            created = found is None
            if created:
                patient = _new_patient(cur, truth, md, today, "SELECT no_rkm_medis FROM set_no_rkm_medis")
            else:
                patient = dict(zip(["no_rkm_medis", "tgl_lahir", "alamat", "namakeluarga", "keluarga"], found))
            t = time.perf_counter()
            cur.execute("SELECT IFNULL(MAX(CONVERT(RIGHT(no_rawat, 6), SIGNED)), 0) FROM reg_periksa "
                        "WHERE tgl_registrasi = %s", (day,))
            no_rawat = f"{no_rawat_prefix(day)}{int(cur.fetchone()[0]) + 1:06d}"
            cur.execute("SELECT IFNULL(MAX(CONVERT(no_reg, SIGNED)), 0) FROM reg_periksa "
                        "WHERE kd_dokter = %s AND tgl_registrasi = %s", (truth.kd_dokter, day))
            no_reg = format_no_reg(int(cur.fetchone()[0]) + 1)
            scan_seconds += time.perf_counter() - t
            _insert_visit(cur, truth, md, clock, patient, created, no_reg, no_rawat)
        conn.close()
    elapsed = time.perf_counter() - t0
    return _rate(truths, elapsed, max_plus_one_seconds=scan_seconds)
