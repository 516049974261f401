"""Secrets: the settings' string forms hide passwords; `.env.example` lists every setting and no real value."""
from __future__ import annotations

import re
import subprocess

import pytest

from khanza_sync.settings import PROJECT_ROOT, Settings

KHANZA_PW = "Kh4nza-Secret-pw!"
WEB_PW = "W3bsite-Secret-pw"
WEB_URL = f"postgresql+psycopg://khanza_sync:{WEB_PW}@db.internal:5432/website"
EXAMPLE = PROJECT_ROOT / ".env.example"


@pytest.fixture
def settings() -> Settings:
    return Settings(khanza_db_password=KHANZA_PW, website_db_url=WEB_URL, _env_file=None)


def test_string_forms_hide_both_passwords(settings):
    forms = [str(settings), repr(settings), f"{settings}", f"{settings!r}", settings.model_dump_json(),
             str(settings.model_dump()), str(settings.khanza_url()), repr(settings.khanza_url())]
    for form in forms:
        assert KHANZA_PW not in form
        assert WEB_PW not in form
    # the whole website URL is secret (it embeds the password), not only the password part
    assert "db.internal" not in str(settings)


def test_secrets_are_still_usable_by_the_code(settings):
    assert settings.khanza_db_password.get_secret_value() == KHANZA_PW
    assert settings.website_db_url.get_secret_value() == WEB_URL
    assert settings.khanza_url().password == KHANZA_PW


def test_secrets_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("KHANZA_DB_PASSWORD", KHANZA_PW)
    monkeypatch.setenv("WEBSITE_DB_URL", WEB_URL)
    loaded = Settings(_env_file=None)
    assert loaded.khanza_db_password.get_secret_value() == KHANZA_PW
    assert KHANZA_PW not in str(loaded) and WEB_PW not in repr(loaded)


def _example_entries() -> dict[str, str]:
    """NAME -> value for every `NAME=value` line, commented (`# NAME=...`) or not."""
    entries = {}
    for line in EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            entries[match.group(1)] = match.group(2).strip()
    return entries


def test_env_example_lists_every_setting():
    listed = set(_example_entries())
    expected = {name.upper() for name in Settings.model_fields}
    assert expected - listed == set(), f"settings missing from .env.example: {sorted(expected - listed)}"
    assert listed - expected == set(), f".env.example names unknown settings: {sorted(listed - expected)}"


def test_env_example_holds_no_secret_value():
    entries = _example_entries()
    for name, value in entries.items():
        if any(word in name for word in ("PASSWORD", "SECRET", "TOKEN")):
            assert value == "", f"{name} must be empty in .env.example"
    for name, value in entries.items():
        # a URL may name a user but never carry a password (user:password@host)
        assert not re.search(r"://[^/@:\s]+:[^/@\s]+@", value), f"{name} embeds a password"


def test_env_example_is_loadable_as_is(monkeypatch):
    """Copying .env.example to .env must give working settings, not a validation error."""
    for key in ("KHANZA_DB_USER", "KHANZA_DB_PASSWORD"):  # ./dev test and tests.support point these at the
        monkeypatch.delenv(key, raising=False)             # private test server; the file alone counts here
    loaded = Settings(_env_file=EXAMPLE)
    assert loaded.khanza_db_password.get_secret_value() == ""
    assert loaded.khanza_db_user == "khanza_sync"


def test_dot_env_is_git_ignored():
    result = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=PROJECT_ROOT)
    if result.returncode == 128:
        pytest.skip("not a git checkout")
    assert result.returncode == 0, ".env must be git-ignored"
