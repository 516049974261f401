"""Khanza desk staff, simulated: walk-in visits inserted exactly the way the desktop's DlgReg does it.

No lock, no transaction (JDBC autocommit): no_rawat = max(RIGHT(no_rawat,6))+1 over the day, no_reg =
max(no_reg)+1 for the doctor that day (URUTNOREG = dokter), then INSERT; on a duplicate no_rawat the desktop
recomputes both numbers and tries again, 5 attempts in all (rules.md §2, §6). Talks to MariaDB directly,
like a desk PC on the hospital LAN. Walk-ins are existing patients (desk patients made by `seed_patients`).
"""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime

import pymysql

MAX_ATTEMPTS = 5  # DlgReg.isRegistrasi


def seed_patients(conn_args: dict, database: str, count: int) -> list[str]:
    """Desk patients (fake) with record numbers far above the pipeline's counter."""
    numbers = [f"9{i:05d}" for i in range(1, count + 1)]
    conn = pymysql.connect(**conn_args, database=database, autocommit=True)
    try:
        with conn.cursor() as cur:
            for rm in numbers:
                cur.execute(
                    "INSERT INTO pasien (no_rkm_medis, nm_pasien, no_ktp, jk, tmp_lahir, tgl_lahir, nm_ibu, alamat, "
                    "gol_darah, pekerjaan, stts_nikah, agama, tgl_daftar, no_tlp, umur, pnd, keluarga, namakeluarga, "
                    "kd_pj, no_peserta, kd_kel, kd_kec, kd_kab, pekerjaanpj, alamatpj, kelurahanpj, kecamatanpj, "
                    "kabupatenpj, perusahaan_pasien, suku_bangsa, bahasa_pasien, cacat_fisik, email, nip, kd_prop, "
                    "propinsipj) VALUES (%s, 'PASIEN LOKET', '-', 'L', '-', '1980-01-01', '-', 'ALAMAT', '-', '-', "
                    "'MENIKAH', '-', '2020-01-01', '-', '40 Th', '-', 'SAUDARA', '-', 'A09', '', 1, 1, 1, '-', '-', "
                    "'-', '-', '-', '-', 1, 1, 1, '-', '-', 1, '-')", (rm,))
    finally:
        conn.close()
    return numbers


@dataclass
class DeskStats:
    inserted: int = 0
    duplicate_retries: int = 0
    gave_up: int = 0
    errors: list[str] = field(default_factory=list)  # exception class names only


class DeskSimulator:
    """`clerks` threads, each registering walk-ins into one doctor/clinic/day until stopped or `per_clerk` done."""

    def __init__(self, conn_args: dict, database: str, *, day: date, kd_dokter: str, kd_poli: str,
                 patients: list[str], clerks: int = 2, per_clerk: int = 100, pause: tuple[float, float] = (0, 0.004),
                 seed: int = 4):
        self.conn_args, self.database = conn_args, database
        self.day, self.kd_dokter, self.kd_poli = day, kd_dokter, kd_poli
        self.patients, self.clerks, self.per_clerk, self.pause = patients, clerks, per_clerk, pause
        self.stats = DeskStats()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._rng = random.Random(seed)

    def start(self) -> "DeskSimulator":
        for i in range(self.clerks):
            thread = threading.Thread(target=self._clerk, args=(i,), name=f"desk-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 30) -> DeskStats:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        return self.stats

    def wait(self, timeout: float = 60) -> DeskStats:
        for thread in self._threads:
            thread.join(timeout)
        return self.stats

    def walk_in_now(self) -> None:
        """One walk-in registered right now, on its own connection (used as a proxy callback)."""
        conn = pymysql.connect(**self.conn_args, database=self.database, autocommit=True, read_timeout=30)
        try:
            self._register(conn, self._rng.choice(self.patients))
        finally:
            conn.close()

    def _clerk(self, index: int) -> None:
        rng = random.Random(self._rng.random() + index)
        conn = pymysql.connect(**self.conn_args, database=self.database, autocommit=True, read_timeout=30)
        try:
            for _ in range(self.per_clerk):
                if self._stop.is_set():
                    return
                self._register(conn, rng.choice(self.patients))
                time.sleep(rng.uniform(*self.pause))
        except Exception as error:  # noqa: BLE001 - recorded, the test asserts on it
            with self._lock:
                self.stats.errors.append(type(error).__name__)
        finally:
            conn.close()

    def _register(self, conn, no_rkm_medis: str) -> None:
        for attempt in range(MAX_ATTEMPTS):
            with conn.cursor() as cur:
                cur.execute("SELECT IFNULL(MAX(CONVERT(RIGHT(no_rawat,6),SIGNED)),0) FROM reg_periksa "
                            "WHERE tgl_registrasi=%s", (self.day,))
                no_rawat = f"{self.day:%Y/%m/%d}/{cur.fetchone()[0] + 1:06d}"
                cur.execute("SELECT IFNULL(MAX(CONVERT(no_reg,SIGNED)),0) FROM reg_periksa "
                            "WHERE kd_dokter=%s AND tgl_registrasi=%s", (self.kd_dokter, self.day))
                no_reg = f"{cur.fetchone()[0] + 1:03d}"
                try:
                    cur.execute(
                        "INSERT INTO reg_periksa VALUES (%s,%s,%s,%s,%s,%s,%s,'-','ALAMAT','SAUDARA',10000,'Belum',"
                        "'Lama','Ralan','A09',40,'Th','Belum Bayar','Lama')",
                        (no_reg, no_rawat, self.day, datetime.now().strftime("%H:%M:%S"), self.kd_dokter,
                         no_rkm_medis, self.kd_poli))
                except pymysql.err.IntegrityError as error:
                    if error.args[0] != 1062:
                        raise
                    with self._lock:
                        self.stats.duplicate_retries += 1
                    continue
            with self._lock:
                self.stats.inserted += 1
            return
        with self._lock:
            self.stats.gave_up += 1
