"""khanza.capabilities: what an older Khanza lacks, decided from information_schema rows. No database."""
from khanza.capabilities import Capabilities, missing_essentials
from khanza.tables import PASIEN, REG_PERIKSA

ALL = {"pasien": {c: "varchar(10)" for c in PASIEN.c.keys()},
       "reg_periksa": {c: "varchar(10)" for c in REG_PERIKSA.c.keys()}}


def caps(**tables) -> Capabilities:
    return Capabilities(columns={**ALL, **tables}, complete=True)


def test_enum_values_and_fallbacks_follow_the_version():
    c = caps(pasien={**ALL["pasien"], "stts_nikah": "enum('BELUM MENIKAH','MENIKAH','JANDA','DUDHA')",
                     "keluarga": "enum('AYAH','IBU','ISTRI','SUAMI','SAUDARA','ANAK')"})
    assert c.enum_values("pasien", "stts_nikah") == ("BELUM MENIKAH", "MENIKAH", "JANDA", "DUDHA")
    row = c.fit("pasien", {"stts_nikah": "JOMBLO", "keluarga": "SAUDARA", "no_rkm_medis": "1"})
    assert (row["stts_nikah"], row["keluarga"]) == ("BELUM MENIKAH", "SAUDARA")


def test_optional_columns_an_older_table_lacks_are_left_out_of_the_row():
    older = {c: t for c, t in ALL["reg_periksa"].items() if c not in ("status_poli", "status_bayar")}
    c = caps(reg_periksa=older)
    row = c.fit("reg_periksa", {k: "x" for k in REG_PERIKSA.c.keys()})
    assert "status_poli" not in row and "status_bayar" not in row and "no_rawat" in row


def test_missing_tables_and_columns_are_named_and_optional_ones_are_not():
    c = caps(jadwal={"kd_dokter": "", "hari_kerja": "", "kd_poli": ""})
    lacking = missing_essentials(c)
    assert "jadwal.kuota" in lacking and "booking_registrasi" in lacking
    assert not any(name.startswith(("set_urut", "set_validasi", "kamar_inap")) for name in lacking)
    assert not c.has("set_validasi_registrasi") and Capabilities().has("set_validasi_registrasi")  # default: current
