import pytest

from khanza_sync.settings import Settings


def test_defaults_and_khanza_names_from_environment(monkeypatch):
    monkeypatch.setenv("KHANZA_DB_HOST", "10.0.0.5")
    monkeypatch.setenv("KHANZA_DB_PORT", "3307")
    monkeypatch.setenv("KHANZA_DB_NAME", "sik")
    monkeypatch.setenv("KHANZA_DB_USER", "sync")
    monkeypatch.setenv("KHANZA_DB_PASSWORD", "s3cret-pw")
    s = Settings(_env_file=None)
    assert (s.khanza_db_host, s.khanza_db_port, s.khanza_db_user) == ("10.0.0.5", 3307, "sync")
    assert s.hospital_timezone == "Asia/Jakarta"
    assert s.khanza_url().render_as_string(hide_password=False).startswith("mysql+pymysql://sync:s3cret-pw@")
    assert "s3cret-pw" not in str(s) and "s3cret-pw" not in repr(s)


@pytest.mark.parametrize("raw, basenoreg, scope", [
    ("dokter", "", "dokter"), ("poli", "", "poli"), ("dokter + poli", "", "dokter+poli"),
    # DlgReg compares the exact string: anything else is its fallback (doctor; clinic under BASENOREG=booking)
    ("POLI", "", "dokter"), ("dokter+poli", "", "dokter"), ("Dokter + Poli", "", "dokter"), ("nonsense", "", "dokter"),
    ("dokter+poli", "booking", "poli"), ("dokter + poli", "booking", "dokter+poli"), ("poli", "Booking", "poli"),
])
def test_urutnoreg_compared_exactly_as_dlgreg_does(raw, basenoreg, scope):
    assert Settings(_env_file=None, khanza_urutnoreg=raw, khanza_basenoreg=basenoreg).noreg_scope == scope


def test_basenoreg_is_booking_only_when_written_exactly_so():
    assert Settings(_env_file=None, khanza_basenoreg="booking").noreg_shared_with_booking
    assert not Settings(_env_file=None, khanza_basenoreg="Booking").noreg_shared_with_booking
    assert Settings(_env_file=None).khanza_urutnoreg == "dokter" and Settings(_env_file=None).khanza_basenoreg == ""


def test_invalid_values_are_refused():
    with pytest.raises(ValueError):
        Settings(_env_file=None, khanza_target="somewhere")
    with pytest.raises(ValueError):
        Settings(_env_file=None, hospital_timezone="Mars/Olympus")
    assert Settings(_env_file=None, hospital_timezone="Asia/Makassar").tz.key == "Asia/Makassar"
