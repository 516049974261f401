"""A deadlock in the middle of a batch, then Prefect's own retry of the load task, on Khanza's real schema
(../shared/khanza/schema.sql): the rows the interrupted attempt committed must not be reported with a queue number
the desk took meanwhile. A real InnoDB deadlock with another connection, the real sync flow and its real retry
policy; nothing is mocked."""
from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from flows.sync_registrations import sync_registrations
from khanza.schedule import HARI_KERJA
from tests.support import (KHANZA_TEST_DB, flows_with_mappings, hospital_today, insert_registrations,
                           khanza_reference_db, registration, rows, set_flow_env, website_rows)

LOCKWAIT_DB = KHANZA_TEST_DB + "_lockwait"
NIK_000054 = "3310010101900054"  # the sample patient 000054 (JAROT KUMBORO, L, 1990-01-01), given a NIK here


@pytest.fixture
def real(khanza_server):
    engine = khanza_reference_db(LOCKWAIT_DB)
    with engine.begin() as conn:
        conn.execute(text("UPDATE pasien SET no_ktp = :nik WHERE no_rkm_medis = '000054'"), {"nik": NIK_000054})
        for hari in HARI_KERJA:  # dr. Qotrunnada (D0000003) at U0003 every day, so any visit day works
            conn.execute(text("INSERT IGNORE INTO jadwal VALUES ('D0000003', :h, '00:00:00', '00:00:00', 'U0003', 30)"),
                         {"h": hari})
        # a patient of the desk's own, for its walk-in (a copy of 000054 without a NIK)
        conn.execute(text("INSERT INTO pasien SELECT '000090', nm_pasien, NULL, jk, tmp_lahir, tgl_lahir, nm_ibu, "
                          "alamat, gol_darah, pekerjaan, stts_nikah, agama, tgl_daftar, no_tlp, umur, pnd, keluarga, "
                          "namakeluarga, kd_pj, no_peserta, kd_kel, kd_kec, kd_kab, pekerjaanpj, alamatpj, kelurahanpj, "
                          "kecamatanpj, kabupatenpj, perusahaan_pasien, suku_bangsa, bahasa_pasien, cacat_fisik, email, "
                          "nip, kd_prop, propinsipj FROM pasien WHERE no_rkm_medis = '000054'"))
    yield engine
    engine.dispose()


def wait_until(condition, what: str, timeout: float = 300, every: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(every)


def lock_waiting(engine) -> bool:
    """Some transaction is waiting for a row lock now. InnoDB refreshes what INNODB_TRX shows only when it was
    not read for 0.1 s, so the callers poll it less often than that."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM information_schema.INNODB_TRX "
                                 "WHERE trx_state = 'LOCK WAIT'")).scalar_one() > 0


class Deadlock(threading.Thread):
    """A real deadlock with the loader in the middle of its batch, the loader its victim.

    This transaction first writes many rows (so InnoDB, which rolls back the lighter transaction, picks the
    loader) and inserts the ledger row of registration lw-3 without committing: the loader, after writing lw-3's
    visit and refreshing patient 000054's umur, waits on that ledger key. Meanwhile (the loader's lw-1 and lw-2
    are committed) the desk registers a walk-in with the day's first queue number, read by its unlocked
    max()+1 before our first commit. Then this transaction asks for 000054's row, which the loader holds: a
    deadlock; the loader's transaction is rolled back (MySQL error 1213) and this one goes on, then rolls back."""

    def __init__(self, engine, day: date):
        super().__init__(daemon=True)
        self.engine, self.day = engine, day
        self.ready, self.done = threading.Event(), threading.Event()
        self.error: BaseException | None = None

    def run(self):
        try:
            with self.engine.connect() as conn:
                trx = conn.begin()
                for i in range(200):
                    conn.execute(text("INSERT INTO khanza_sync_decisions (registration_id, action, decided_by, reason, "
                                      "decided_at) VALUES (:i, 'requeue', 'test', 'weight', NOW())"), {"i": f"w-{i}"})
                conn.execute(text("INSERT INTO khanza_sync_ledger (registration_id, outcome, target, no_rkm_medis, no_reg, "
                                  "kd_poli, kd_dokter, tanggal, created_at) VALUES ('lw-3', 'created', 'reg_periksa', "
                                  "'000054', '999', 'U0003', 'D0000003', :d, NOW())"), {"d": self.day})
                self.ready.set()
                wait_until(lambda: lock_waiting(self.engine), "the loader to wait on lw-3's ledger key", every=0.25)
                with self.engine.begin() as desk:
                    desk.execute(text(
                        "INSERT INTO reg_periksa VALUES ('001', :rawat, :d, '07:00:00', 'D0000003', '000090', 'U0003', "
                        "'-', '-', 'SAUDARA', 10000, 'Belum', 'Lama', 'Ralan', 'A09', 36, 'Th', 'Belum Bayar', 'Lama')"),
                        {"rawat": f"{self.day:%Y/%m/%d}/000090", "d": self.day})
                conn.execute(text("SELECT no_rkm_medis FROM pasien WHERE no_rkm_medis = '000054' FOR UPDATE"))
                self.done.set()  # we got the row: the deadlock's victim was the loader
                trx.rollback()
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error
            self.ready.set()


@pytest.mark.parametrize("website_url", ["sqlite"], indirect=True)
def test_deadlock_mid_batch_then_prefect_retry_reports_only_numbers_khanza_holds(real, website_url, tmp_path,
                                                                                   monkeypatch):
    flows_with_mappings(monkeypatch, tmp_path, LOCKWAIT_DB, website_url, poliklinik="penyakit-dalam: U0003\n",
                        dokter="dr-qotrunnada: D0000003\n")
    set_flow_env(monkeypatch, KHANZA_RETRIES=1, KHANZA_RETRY_DELAY_SECONDS=0)  # Prefect retries the load once

    day = hospital_today() + timedelta(days=1)
    start = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=10)
    common = dict(poliklinik="penyakit-dalam", doctor="dr-qotrunnada", visit_date=day)
    regs = [registration(id="lw-1", created_at=start, **common),
            registration(id="lw-2", created_at=start + timedelta(seconds=1), **common),
            # 000054 himself: his ledger key is held by the other transaction (above)
            registration(id="lw-3", created_at=start + timedelta(seconds=2), nik=NIK_000054, full_name="Jarot Kumboro",
                         gender="L", birth_date=date(1990, 1, 1), **common),
            registration(id="lw-4", created_at=start + timedelta(seconds=3), **common)]
    insert_registrations(website_url, regs)

    deadlock = Deadlock(real, day)
    deadlock.start()
    assert deadlock.ready.wait(60) and deadlock.error is None, deadlock.error
    state = sync_registrations(return_state=True)
    deadlock.join(60)
    assert deadlock.error is None, deadlock.error
    assert deadlock.done.is_set()  # the first attempt died mid-batch in a deadlock (1213) ...
    assert state.is_completed(), state.message  # ... and the same run completed: Prefect's retry did it

    web = website_rows(website_url)
    assert list(web["status"]) == ["synced"] * 4, web[["status", "error_code"]]
    visits = {r["no_rawat"]: r for r in rows(real, "SELECT no_rawat, no_reg, kd_dokter, stts FROM reg_periksa "
                                                   "WHERE tgl_registrasi = :d", d=day)}
    for reg_id, row in web.iterrows():  # the number told is the number Khanza holds for that visit ...
        assert visits[row["no_rawat"]]["no_reg"] == row["no_reg"], reg_id
    held = [v["no_reg"] for v in visits.values() if v["kd_dokter"] == "D0000003" and v["stts"] != "Batal"]
    assert len(held) == len(set(held)) == 5, held  # ... and nobody else holds it (4 ours + the desk's 001)
    assert web.loc["lw-1", "no_reg"] != "001"  # committed by the failed attempt, renumbered by the retry
