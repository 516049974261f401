import pandas as pd
import pytest

import mappings
from khanza_sync.settings import PROJECT_ROOT

SEED_SLUGS = ["penyakit-dalam", "bedah", "anak", "kandungan", "mata", "kulit-dan-kelamin", "saraf", "orthopedi",
              "gigi", "telinga-hidung-tenggorokan"]


def test_shipped_mappings_fit_khanza_columns():
    maps = mappings.load(PROJECT_ROOT / "mappings")
    assert set(SEED_SLUGS) <= set(maps.poliklinik)
    assert all(len(code) <= 5 for code in maps.poliklinik.values()), "kd_poli is char(5)"
    assert all(len(code) <= 3 for code in maps.penjab.values()), "kd_pj is char(3)"
    assert all(len(code) <= 20 for code in maps.dokter.values()), "kd_dokter is varchar(20)"
    assert set(maps.penjab) == {"umum", "bpjs", "asuransi"}
    assert maps.poliklinik["kandungan"] != "KANDUNGAN"


def test_apply_maps_and_rejects_unknown_or_inactive_codes():
    maps = mappings.Mappings(poliklinik={"anak": "ANAK", "lama": "LAMA"}, dokter={"dr-a": "D1"},
                             penjab={"umum": "A09"})
    codes = mappings.KhanzaCodes(poli=frozenset({"ANAK"}), dokter=frozenset({"D1"}), penjab=frozenset({"A09"}))
    df = pd.DataFrame([
        {"id": "ok", "poliklinik": " Anak ", "doctor": "dr-a", "payment": "umum"},
        {"id": "unmapped", "poliklinik": "jantung", "doctor": "dr-a", "payment": "umum"},
        {"id": "inactive", "poliklinik": "lama", "doctor": "dr-a", "payment": "umum"},
        {"id": "doctor", "poliklinik": "anak", "doctor": "dr-x", "payment": "umum"},
        {"id": "payer", "poliklinik": "anak", "doctor": "dr-a", "payment": "asuransi"},
    ])
    mapped, rejections = mappings.apply(df, maps, codes)
    assert mapped[["id", "kd_poli", "kd_dokter", "kd_pj"]].to_dict("records") == [
        {"id": "ok", "kd_poli": "ANAK", "kd_dokter": "D1", "kd_pj": "A09"}]
    assert dict(zip(rejections["id"], rejections["error_code"])) == {
        "unmapped": "UNKNOWN_POLI", "inactive": "UNKNOWN_POLI", "doctor": "UNKNOWN_DOCTOR", "payer": "UNKNOWN_PAYER"}


def test_malformed_mapping_file_is_a_clear_error(tmp_path):
    for name in ("poliklinik.yaml", "dokter.yaml", "penjab.yaml"):
        (tmp_path / name).write_text("a: B\n")
    (tmp_path / "dokter.yaml").write_text("- not\n- a mapping\n")
    with pytest.raises(mappings.MappingFileError, match="dokter.yaml"):
        mappings.load(tmp_path)
