"""The promise, as queries: every registration ends synced exactly once or rejected with a reason.

Used by the fault tests and by bench/soak.py. Returns counts and registration ids only, never patient data.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import Engine, bindparam, text

from website import store


@dataclass
class Audit:
    total: int = 0
    synced: int = 0
    rejected: int = 0
    pending: int = 0
    # problems (all must be empty)
    lost: list[str] = field(default_factory=list)  # still pending, or synced without a Khanza visit
    told_wrong: list[str] = field(default_factory=list)  # website numbers differ from Khanza's ledger/visit
    rejected_but_loaded: list[str] = field(default_factory=list)  # in Khanza, but the website says rejected
    duplicate_visits: list[tuple] = field(default_factory=list)  # >1 live visit: same patient, clinic, day
    duplicate_no_rawat: list[str] = field(default_factory=list)
    shared_no_reg: list[tuple] = field(default_factory=list)  # a pipeline visit shares its no_reg in scope
    patients_per_nik: list[int] = field(default_factory=list)  # counts > 1 (NIKs themselves never kept)
    by_error: Counter = field(default_factory=Counter)

    @property
    def duplicated(self) -> int:
        return (len(self.duplicate_visits) + len(self.duplicate_no_rawat) + len(self.shared_no_reg)
                + len(self.patients_per_nik))

    @property
    def problems(self) -> dict[str, list]:
        return {k: v for k, v in {
            "lost": self.lost, "told_wrong": self.told_wrong, "rejected_but_loaded": self.rejected_but_loaded,
            "duplicate_visits": self.duplicate_visits, "duplicate_no_rawat": self.duplicate_no_rawat,
            "shared_no_reg": self.shared_no_reg, "patients_per_nik": self.patients_per_nik}.items() if v}

    def summary(self) -> str:
        return (f"total={self.total} synced={self.synced} rejected={self.rejected} pending={self.pending} "
                f"lost={len(self.lost)} duplicated={self.duplicated} told_wrong={len(self.told_wrong)} "
                f"rejected_but_loaded={len(self.rejected_but_loaded)}")


def audit(khanza: Engine, web: Engine, ids: list[str] | None = None, *, allow_pending: bool = False,
          scope: str = "dokter") -> Audit:
    """Compare the website store with Khanza (reg_periksa, pasien, ledger) for the given registrations."""
    rows = store.fetch_rows(web, ids)
    result = Audit(total=len(rows))
    status = Counter(rows["status"])
    result.synced, result.rejected, result.pending = status["synced"], status["rejected"], status["pending"]
    result.by_error = Counter(rows["error_code"].dropna())
    reg_ids = rows["id"].tolist()
    niks = rows.set_index("id")["nik"].to_dict()

    with khanza.connect() as conn:
        ledger = {}
        if reg_ids:
            stmt = text("SELECT registration_id, outcome, no_rkm_medis, no_rawat, no_reg FROM khanza_sync_ledger "
                        "WHERE registration_id IN :ids").bindparams(bindparam("ids", expanding=True))
            ledger = {r.registration_id: r for r in conn.execute(stmt, {"ids": reg_ids})}
        visits = pd.read_sql(text("SELECT no_rawat, no_reg, tgl_registrasi, kd_dokter, kd_poli, no_rkm_medis, stts "
                                  "FROM reg_periksa"), conn)
        nik_counts = Counter(r[0] for r in conn.execute(text("SELECT no_ktp FROM pasien")))

    by_rawat = visits.set_index("no_rawat")
    for row in rows.itertuples():
        entry = ledger.get(row.id)
        if row.status == "pending":
            if not allow_pending:
                result.lost.append(row.id)
            continue
        if row.status == "rejected":
            if entry is not None:
                result.rejected_but_loaded.append(row.id)
            continue
        # synced: Khanza must hold exactly what the website tells the patient
        if entry is None or entry.no_rawat not in by_rawat.index:
            result.lost.append(row.id)
            continue
        visit = by_rawat.loc[entry.no_rawat]
        if (row.no_rawat, row.no_reg, row.no_rkm_medis) != (entry.no_rawat, entry.no_reg, entry.no_rkm_medis) \
                or visit["no_reg"] != entry.no_reg:
            result.told_wrong.append(row.id)

    live = visits[visits["stts"] != "Batal"]
    result.duplicate_no_rawat = visits["no_rawat"][visits["no_rawat"].duplicated()].tolist()
    pipeline_rm = {e.no_rkm_medis for e in ledger.values()}
    mine = live[live["no_rkm_medis"].isin(pipeline_rm)]
    dup = mine.groupby(["no_rkm_medis", "kd_poli", "tgl_registrasi"]).size()
    result.duplicate_visits = [tuple(map(str, k)) for k, n in dup.items() if n > 1]
    keys = {"dokter": ["tgl_registrasi", "kd_dokter"], "poli": ["tgl_registrasi", "kd_poli"],
            "dokter+poli": ["tgl_registrasi", "kd_dokter", "kd_poli"]}[scope]
    pipeline_rawat = {e.no_rawat for e in ledger.values() if e.outcome == "created"}
    for key, group in live.groupby(keys + ["no_reg"]):
        if len(group) > 1 and pipeline_rawat.intersection(group["no_rawat"]):
            result.shared_no_reg.append(tuple(map(str, key)))
    result.patients_per_nik = [nik_counts[n] for n in set(niks.values()) if n and nik_counts[n] > 1]
    return result
