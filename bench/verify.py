"""Correctness after a full-speed run: nothing lost, nothing doubled, the website holds Khanza's numbers.

Returns a list of failed checks (empty = all good) and counts; never any patient value.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from bench import build_khanza as B
from bench import common as C
from bench.backlog import Truth


def verify(database: str, website: Path, truths: list[Truth], n_total: int) -> tuple[list[str], dict]:
    problems: list[str] = []
    web = sqlite3.connect(website)
    rows = web.execute("SELECT id, status, error_code, no_rkm_medis, no_rawat, no_reg FROM online_registrations").fetchall()
    web.close()
    by_status: dict[str, int] = {}
    for r in rows:
        by_status[r[1]] = by_status.get(r[1], 0) + 1
    if len(rows) != n_total:
        problems.append(f"website holds {len(rows)} rows, expected {n_total}")
    if by_status.get("pending"):
        problems.append(f"{by_status['pending']} registrations still pending (lost)")
    synced = {r[0]: r for r in rows if r[1] == "synced"}
    valid_ids = {t.id for t in truths}
    if set(synced) != valid_ids:
        problems.append(f"synced set differs from the valid set: {len(valid_ids - set(synced))} valid not synced, "
                        f"{len(set(synced) - valid_ids)} invalid synced")
    if any(r[2] is None for r in rows if r[1] == "rejected"):
        problems.append("a rejected row has no error code")

    _end, after = B.history_end(database)
    conn = B.connect(database)
    with conn.cursor() as cur:
        cur.execute("SELECT l.registration_id, l.outcome, l.no_rkm_medis, l.no_rawat, l.no_reg, r.no_rawat, r.no_reg, "
                    "r.no_rkm_medis, r.tgl_registrasi = l.tanggal, l.patient_created FROM khanza_sync_ledger l "
                    "LEFT JOIN reg_periksa r ON r.no_rawat = l.no_rawat")
        ledger = {row[0]: row for row in cur.fetchall()}
        new_visits = C.first_row(cur, "SELECT COUNT(*) FROM reg_periksa WHERE no_rawat >= %s", after)[0]
        dup_no_reg = C.first_row(cur, "SELECT COUNT(*) FROM (SELECT tgl_registrasi, kd_dokter, no_reg FROM reg_periksa "
                                 "WHERE no_rawat >= %s AND stts <> 'Batal' GROUP BY 1, 2, 3 HAVING COUNT(*) > 1) d",
                                 after)[0]
        new_patients, distinct_nik = C.first_row(
            cur, "SELECT COUNT(*), COUNT(DISTINCT no_ktp) FROM pasien WHERE no_rkm_medis > %s", f"{C.N_PATIENTS:06d}")
        counter = C.first_row(cur, "SELECT no_rkm_medis FROM set_no_rkm_medis")[0]
        max_rm = C.first_row(cur, "SELECT MAX(no_rkm_medis) FROM pasien")[0]
    conn.close()

    created = [r for r in ledger.values() if r[1] == "created"]
    if set(ledger) != set(synced):
        problems.append(f"ledger ({len(ledger)}) and website synced rows ({len(synced)}) differ")
    if new_visits != len(created):
        problems.append(f"{new_visits} new visits in Khanza but {len(created)} created in the ledger")
    if any(r[5] is None for r in created):
        problems.append("a ledger row points to a visit that does not exist")
    if any(r[4] != r[6] or r[2] != r[7] or not r[8] for r in created):
        problems.append("a ledger row disagrees with its visit (no_reg, no_rkm_medis or date)")
    mismatched = sum(1 for rid, w in synced.items() if rid in ledger and
                     (w[3], w[4], w[5]) != (ledger[rid][2], ledger[rid][3], ledger[rid][4]))
    if mismatched:
        problems.append(f"{mismatched} website rows hold numbers other than Khanza's")
    if len({w[4] for w in synced.values()}) != len(synced):
        problems.append("two website rows hold the same no_rawat")
    if dup_no_reg:
        problems.append(f"{dup_no_reg} duplicate no_reg within (day, doctor)")
    n_new = sum(1 for t in truths if t.existing_rm is None)
    if new_patients != n_new or distinct_nik != n_new:
        problems.append(f"{new_patients} patients created ({distinct_nik} distinct NIK), expected {n_new}")
    if counter != max_rm:
        problems.append("set_no_rkm_medis is not the highest medical-record number")
    wrong_patient = sum(1 for t in truths if t.existing_rm and t.id in ledger and ledger[t.id][2] != t.existing_rm)
    if wrong_patient:
        problems.append(f"{wrong_patient} existing patients matched to another record")
    counts = {"website": by_status, "ledger": len(ledger), "created": len(created), "new_visits": new_visits,
              "new_patients": new_patients, "duplicate_no_reg": dup_no_reg, "mismatched_numbers": mismatched}
    return problems, counts
