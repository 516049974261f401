"""Build a realistic Khanza database for the benchmark, in bulk, from the project's fixture schema.

    .venv/bin/python -m bench.build_khanza [--rebuild] [--small-only]

`khanza_bench`: 12 clinics, 40 doctors with weekly schedules, 200,000 patients, 1,000,000 visits over three
years ending today (914 a day) and the online-booking history that goes with them (every 10th visit).
`khanza_bench_small`: the same master data and patients, and the last 10,000 of those visits (11 days).

Rows are generated inside MariaDB with `INSERT ... SELECT` over the Sequence engine (`seq_0_to_N`), so
nothing goes row by row through Python. A built database is reused while its counts are right
(`bench_meta` records the build); `--rebuild` drops and rebuilds it.
"""
from __future__ import annotations

import argparse
import time
from datetime import date, timedelta

import pymysql


from bench import common as C
from khanza.numbering import no_rawat_prefix
from khanza_sync import localdb, ownership
from khanza_sync.settings import PROJECT_ROOT
from khanza_sync.sqlfiles import statements

SCHEMA = PROJECT_ROOT / "sql" / "khanza_fixture_schema.sql"
LEDGER = PROJECT_ROOT / "sql" / "khanza_ledger.sql"
CHUNK = 250_000


def connect(database: str | None = None, autocommit: bool = True) -> pymysql.Connection:
    """A connection to the project's private MariaDB (khanza_sync/localdb.py), never the machine's own."""
    where = localdb.coordinates()
    return pymysql.connect(host=where.mariadb_host, port=where.mariadb_port, user=where.mariadb_user, password="",
                           database=database, charset="utf8mb4", autocommit=autocommit, local_infile=True)


def _server():
    """A SQLAlchemy engine on the private MariaDB's server, for the ownership checks (started on demand)."""
    from khanza.db import make_engine
    from khanza.setup import private_server_settings

    return make_engine(private_server_settings("information_schema"), database="information_schema")


def _sql_list(values) -> str:
    return ",".join(values)


def master_data_sql() -> list[str]:
    clinics = _sql_list(f"('{kd}','{name}',15000,10000,'1')" for kd, _slug, name in C.CLINICS)
    doctors = _sql_list(f"('{C.doctor_code(i)}','dr. Bench {i + 1:03d}','{'LP'[i % 2]}','','-','1')"
                        for i in range(C.N_DOCTORS))
    jadwal = _sql_list(
        f"('{C.doctor_code(i)}','{C.HARI[d]}','08:00:00','14:00:00','{C.CLINICS[C.doctor_clinic(i)][0]}',{C.KUOTA})"
        for i in range(C.N_DOCTORS) for d in range(7) if d != C.doctor_day_off(i))
    return [
        "SET SESSION sql_mode='NO_AUTO_VALUE_ON_ZERO,STRICT_TRANS_TABLES'",
        "INSERT INTO propinsi VALUES (1,'-'),(3,'JAWA TENGAH')",
        "INSERT INTO kabupaten VALUES (1,'-'),(2,'KLATEN')",
        "INSERT INTO kecamatan VALUES (1,'-'),(2,'KLATEN UTARA')",
        "INSERT INTO kelurahan VALUES (1,'-'),(3,'DUKUH')",
        "INSERT INTO penjab VALUES ('-','-','-','-','-','','1'),('A09','UMUM','-','-','-','-','1'),"
        "('BPJ','BPJS','-','-','-','-','1'),('A92','ASURANSI','-','-','-','-','1')",
        "INSERT INTO perusahaan_pasien VALUES ('-','-','-','-','0')",
        "INSERT INTO suku_bangsa VALUES (1,'-'),(5,'JAWA')",
        "INSERT INTO bahasa_pasien VALUES (1,'-'),(5,'INDONESIA')",
        "INSERT INTO cacat_fisik VALUES (1,'-'),(5,'TIDAK ADA')",
        "INSERT INTO spesialis VALUES ('-','-')",
        f"INSERT INTO poliklinik VALUES ('-','-',0,0,'1'),{clinics}",
        f"INSERT INTO dokter (kd_dokter,nm_dokter,jk,email,kd_sps,status) VALUES ('-','-','L','','-','1'),{doctors}",
        f"INSERT INTO jadwal (kd_dokter,hari_kerja,jam_mulai,jam_selesai,kd_poli,kuota) VALUES {jadwal}",
        f"INSERT INTO set_no_rkm_medis VALUES ('{C.N_PATIENTS:06d}')",
        "INSERT INTO set_urut_no_rkm_medis VALUES ('Straight','No','No','Depan')",
        "CREATE TABLE bench_meta (k varchar(40) PRIMARY KEY, v varchar(200)) ENGINE=InnoDB",
    ]


FIRST_NAMES = "ANDI BUDI CITRA DEWI EKO FITRI GILANG HANA INDRA JOKO KARTIKA LUKMAN MAYA NUR OKTA PUTRI RUDI SITI TONO WATI"
LAST_NAMES = "SANTOSO WIJAYA LESTARI PRATAMA HIDAYAT SAPUTRA KURNIAWAN RAHAYU SETIAWAN WIBOWO"


def patients_sql(lo: int, hi: int, history_end: date) -> str:
    """Patients lo..hi (1-based): no_rkm_medis 000001..200000, NIK 3310 + 12 digits, a third with a BPJS card."""
    firsts = ",".join(f"'{n}'" for n in FIRST_NAMES.split())
    lasts = ",".join(f"'{n}'" for n in LAST_NAMES.split())
    return f"""
INSERT INTO pasien (no_rkm_medis, nm_pasien, no_ktp, jk, tmp_lahir, tgl_lahir, nm_ibu, alamat, gol_darah, pekerjaan,
  stts_nikah, agama, tgl_daftar, no_tlp, umur, pnd, keluarga, namakeluarga, kd_pj, no_peserta, kd_kel, kd_kec, kd_kab,
  pekerjaanpj, alamatpj, kelurahanpj, kecamatanpj, kabupatenpj, perusahaan_pasien, suku_bangsa, bahasa_pasien,
  cacat_fisik, email, nip, kd_prop, propinsipj)
SELECT LPAD(seq, 6, '0'), CONCAT(ELT(1 + seq % 20, {firsts}), ' ', ELT(1 + (seq DIV 20) % 10, {lasts})),
  CONCAT('3310', LPAD(seq, 12, '0')), IF(seq % 2 = 0, 'L', 'P'), 'KLATEN',
  DATE_SUB('2025-06-30', INTERVAL (seq * 37) % 30000 DAY), 'IBU', CONCAT('JL. MERAPI ', seq % 500, ', KLATEN'),
  '-', '-', 'MENIKAH', 'ISLAM', DATE_SUB('{history_end}', INTERVAL seq % 1500 DAY),
  CONCAT('0812', LPAD(seq, 8, '0')), '30 Th 0 Bl 0 Hr', '-', 'SUAMI', 'KELUARGA',
  IF(seq % 3 = 0, 'BPJ', 'A09'), IF(seq % 3 = 0, CONCAT('0001', LPAD(seq, 9, '0')), ''),
  3, 2, 2, '-', 'JL. MERAPI', 'DUKUH', 'KLATEN UTARA', 'KLATEN', '-', 5, 5, 5, '-', '-', 3, 'JAWA TENGAH'
FROM seq_{lo}_to_{hi}"""


def _visit_exprs(start: date) -> dict[str, str]:
    """Column expressions for visit number `seq` (0-based): day = seq DIV 914, counter within the day,
    doctor = counter mod 40 (so no_reg per doctor and day is (counter-1) DIV 40 + 1), patient = a
    permutation of the 200,000 patients (7919 is prime to 200,000: one day never repeats a patient)."""
    per_day = C.VISITS_PER_DAY
    clinic_of = " ".join(f"WHEN {i} THEN '{C.CLINICS[C.doctor_clinic(i)][0]}'" for i in range(C.N_DOCTORS))
    return {
        "day": f"DATE_ADD('{start}', INTERVAL seq DIV {per_day} DAY)",
        "counter": f"(seq MOD {per_day} + 1)",
        "doc": f"(seq MOD {per_day}) MOD {C.N_DOCTORS}",
        "poli": f"CASE (seq MOD {per_day}) MOD {C.N_DOCTORS} {clinic_of} END",
        "no_reg": f"LPAD((seq MOD {per_day}) DIV {C.N_DOCTORS} + 1, 3, '0')",
        "rm": f"LPAD(1 + (seq * 7919) MOD {C.N_PATIENTS}, 6, '0')",
    }


def visits_sql(lo: int, hi: int, start: date) -> str:
    e = _visit_exprs(start)
    return f"""
INSERT INTO reg_periksa (no_reg, no_rawat, tgl_registrasi, jam_reg, kd_dokter, no_rkm_medis, kd_poli, p_jawab,
  almt_pj, hubunganpj, biaya_reg, stts, stts_daftar, status_lanjut, kd_pj, umurdaftar, sttsumur, status_bayar,
  status_poli)
SELECT {e['no_reg']}, CONCAT(DATE_FORMAT({e['day']}, '%Y/%m/%d/'), LPAD({e['counter']}, 6, '0')), {e['day']},
  SEC_TO_TIME(25200 + {e['counter']} * 20), CONCAT('D', LPAD({e['doc']} + 1, 3, '0')), {e['rm']}, {e['poli']},
  'KELUARGA', 'JL. MERAPI, DUKUH, KLATEN UTARA, KLATEN', 'SUAMI', 10000,
  IF(seq % 50 = 0, 'Batal', 'Sudah'), IF(seq % 7 = 0, 'Baru', 'Lama'), 'Ralan', IF(seq % 10 < 4, 'BPJ', 'A09'),
  30 + seq % 40, 'Th', IF(seq % 50 = 0, 'Belum Bayar', 'Sudah Bayar'), IF(seq % 5 = 0, 'Baru', 'Lama')
FROM seq_{lo}_to_{hi}"""


def bookings_sql(lo: int, hi: int, start: date) -> str:
    e = _visit_exprs(start)
    return f"""
INSERT IGNORE INTO booking_registrasi (tanggal_booking, jam_booking, no_rkm_medis, tanggal_periksa, kd_dokter, kd_poli,
  no_reg, kd_pj, limit_reg, waktu_kunjungan, status)
SELECT DATE_SUB({e['day']}, INTERVAL 1 + seq % 5 DAY), '19:30:00', {e['rm']}, {e['day']},
  CONCAT('D', LPAD({e['doc']} + 1, 3, '0')), {e['poli']}, {e['no_reg']}, IF(seq % 10 < 4, 'BPJ', 'A09'), 1,
  TIMESTAMP({e['day']}, '08:00:00'), 'Terdaftar'
FROM seq_{lo}_to_{hi} WHERE seq MOD {C.BOOKING_SHARE} = 0"""


def read_meta(database: str) -> dict[str, str] | None:
    try:
        conn = connect(database)
    except pymysql.err.OperationalError:
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT k, v FROM bench_meta")
            return dict(cur.fetchall())
    except pymysql.err.MySQLError:
        return None
    finally:
        conn.close()


def history_end(database: str) -> tuple[date, str]:
    """The last day of the built history, and the first no_rawat after it (where the benchmark's runs begin)."""
    end = date.fromisoformat(read_meta(database)["history_end"])
    return end, no_rawat_prefix(end + timedelta(days=1))


def reset(database: str) -> None:
    """Back to the built state: remove everything after the history (visits, bookings and patients the
    benchmark's runs created), empty the ledger, restore the medical-record counter."""
    server = _server()
    with server.connect() as check:
        ownership.require_mariadb_owned(check, database, "reset")  # refused unless Khanza Sync built it
    server.dispose()
    end, after = history_end(database)
    conn = connect(database)
    with conn.cursor() as cur:
        cur.execute("SET SESSION foreign_key_checks=0")
        cur.execute("DELETE FROM reg_periksa WHERE no_rawat >= %s", (after,))
        cur.execute("DELETE FROM booking_registrasi WHERE tanggal_periksa > %s", (end,))
        cur.execute("DELETE FROM pasien WHERE no_rkm_medis > %s", (f"{C.N_PATIENTS:06d}",))
        cur.execute("DELETE FROM khanza_sync_ledger")
        cur.execute("DELETE FROM set_no_rkm_medis")
        cur.execute("INSERT INTO set_no_rkm_medis VALUES (%s)", (f"{C.N_PATIENTS:06d}",))
    conn.close()


def is_built(database: str, n_visits: int) -> bool:
    meta = read_meta(database)
    if not meta or meta.get("complete") != "1" or int(meta.get("n_visits", -1)) != n_visits:
        return False
    reset(database)
    conn = connect(database)
    with conn.cursor() as cur:
        visits = C.first_row(cur, "SELECT COUNT(*) FROM reg_periksa")[0]
        patients = C.first_row(cur, "SELECT COUNT(*) FROM pasien")[0]
    conn.close()
    return visits == n_visits and patients == C.N_PATIENTS + 1  # + Khanza's '-' placeholder patient


def build(database: str, n_visits: int, log=print) -> float:
    t0 = time.perf_counter()
    history_end = C.hospital_today()
    n_days = (n_visits - 1) // C.VISITS_PER_DAY + 1
    start = history_end - timedelta(days=n_days - 1)
    server = _server()
    with server.begin() as conn:  # refused unless absent or built by Khanza Sync
        ownership.recreate_mariadb_database(conn, database, "benchmark Khanza database")
    server.dispose()
    conn = connect(database, autocommit=False)
    with conn.cursor() as cur:
        for stmt in statements(SCHEMA) + statements(LEDGER) + master_data_sql():
            cur.execute(stmt)
        cur.execute("INSERT INTO pasien VALUES ('-','-','-','L','-','2022-08-03','-','','-','-','MENIKAH','ISLAM',"
                    "'2022-08-03','-','0 Th','-','SAUDARA','-','-','-',1,1,1,'-','ALAMAT','KELURAHAN','KECAMATAN',"
                    "'KABUPATEN','-',1,1,1,'-','-',1,'PROPINSI')")
        conn.commit()
        cur.execute("SET SESSION foreign_key_checks=0")
        cur.execute("SET SESSION unique_checks=0")
        for lo in range(1, C.N_PATIENTS + 1, CHUNK):
            cur.execute(patients_sql(lo, min(lo + CHUNK - 1, C.N_PATIENTS), history_end))
            conn.commit()
        log(f"  {database}: {C.N_PATIENTS:,} patients ({time.perf_counter() - t0:.1f} s)")
        # Visit numbers 0..n_visits-1 from `start`, 914 a day, so the history ends today in both databases.
        for lo in range(0, n_visits, CHUNK):
            hi = min(lo + CHUNK, n_visits) - 1
            cur.execute(visits_sql(lo, hi, start))
            cur.execute(bookings_sql(lo, hi, start))
            conn.commit()
            log(f"  {database}: visits {hi + 1:,}/{n_visits:,} ({time.perf_counter() - t0:.1f} s)")
        cur.execute("SET SESSION foreign_key_checks=1")
        cur.execute("SET SESSION unique_checks=1")
        for table in ("pasien", "reg_periksa", "booking_registrasi"):
            cur.execute(f"ANALYZE TABLE {table}")
            cur.fetchall()
        last_day, count = C.first_row(cur, "SELECT MAX(tgl_registrasi), COUNT(*) FROM reg_periksa")
        elapsed = time.perf_counter() - t0
        meta = {"n_visits": str(count), "n_patients": str(C.N_PATIENTS), "history_end": str(last_day),
                "build_seconds": f"{elapsed:.1f}", "built_on": str(history_end), "complete": "1"}
        cur.executemany("INSERT INTO bench_meta VALUES (%s, %s)", list(meta.items()))
        conn.commit()
    conn.close()
    return elapsed


def ensure(database: str, n_visits: int, rebuild: bool = False, log=print) -> dict[str, str]:
    _server().dispose()  # the private MariaDB, started on demand
    if rebuild or not is_built(database, n_visits):
        log(f"building {database} ({n_visits:,} visits) ...")
        elapsed = build(database, n_visits, log=log)
        log(f"built {database} in {elapsed:.1f} s")
    else:
        log(f"{database}: reusing the built database ({n_visits:,} visits; --rebuild to rebuild)")
    return read_meta(database)


def table_sizes(database: str) -> dict[str, tuple[int, float]]:
    conn = connect(database)
    with conn.cursor() as cur:
        cur.execute("SELECT table_name, table_rows, (data_length + index_length) / 1048576 FROM "
                    "information_schema.tables WHERE table_schema = %s AND table_name IN "
                    "('pasien','reg_periksa','booking_registrasi')", (database,))
        out = {r[0]: (int(r[1]), float(r[2])) for r in cur.fetchall()}
    conn.close()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--small-only", action="store_true")
    args = parser.parse_args(argv)
    ensure(C.SMALL_DB, C.N_VISITS_SMALL, args.rebuild)
    if not args.small_only:
        ensure(C.BIG_DB, C.N_VISITS_BIG, args.rebuild)


if __name__ == "__main__":
    main()
