"""The Indonesian docs (docs/id/) cannot drift silently from the code: every page exists and is reachable from the
README, every relative link and anchor resolves, every UPPER_CASE name they mention is a real setting, error code,
Prefect setting or environment variable the project reads, the settings table lists exactly the settings with
their real defaults, and the website guide's code is the English guide's code (which
tests/integration/test_website_guide.py runs), only its comments translated."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from khanza_sync.error_codes import ErrorCode
from khanza_sync.settings import PROJECT_ROOT, Settings

DOCS_ID = PROJECT_ROOT / "docs" / "id"
PAGES = ("README.md", "produksi.md", "deploy.md", "website.md", "tim-data.md")
ENGLISH_GUIDE = PROJECT_ROOT / "docs" / "website.md"

# UPPER_CASE words of docs/id that are none of the checked kinds, each with why it is there. Kept small on purpose.
NOT_SETTINGS = {
    "UTC_TIMESTAMP": "MySQL's function in website.md (the created_at default)",
    "CURRENT_TIMESTAMP": "SQL, in website.md (a Laravel migration's ON UPDATE CURRENT_TIMESTAMP)",
    "WEBSITE_DB_PASSWORD": "the PHP example's own environment variable in website.md, said there not to be a setting",
}
# Where an environment variable the project reads (not a Settings field) must appear, outside docs.
PROJECT_CODE = ("dev", "scripts", "khanza_sync", "deploy", "flows", "tasks", "khanza", "website")

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
EXAMPLE = re.compile(r"<!-- example: ([\w-]+) -->\n```(\w+)\n(.*?)\n```", re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
NAME = re.compile(r"(?<![\w-])([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(_\*)?(?![\w-])")


def pages() -> list[Path]:
    return [DOCS_ID / name for name in PAGES]


def prose(text: str) -> str:
    """The text without its fenced code blocks (a `# comment` there is no heading, a `[x](y)` no link)."""
    return FENCE.sub("", text)


def links(path: Path) -> list[str]:
    return LINK.findall(re.sub(r"`[^`\n]*`", "", prose(path.read_text())))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", prose(path.read_text()), re.M)}


def test_every_page_exists_and_is_reachable_from_the_readme():
    assert sorted(p.name for p in DOCS_ID.glob("*.md")) == sorted(PAGES), "docs/id pages changed: update PAGES"
    first = (PROJECT_ROOT / "README.md").read_text().splitlines()[0]
    assert "](docs/id/README.md)" in first, "the README's first line links the Indonesian docs"
    linked = {target.split("#")[0] for target in links(DOCS_ID / "README.md")}
    assert set(PAGES[1:]) <= linked, f"docs/id/README.md does not link {sorted(set(PAGES[1:]) - linked)}"


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_and_anchor_resolves(page):
    source = DOCS_ID / page
    checked = 0
    for target in links(source):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (source.parent / path).resolve() if path else source
        assert resolved.exists(), f"{page}: link {target} -> {resolved} does not exist"
        if anchor:
            assert resolved.suffix == ".md", f"{page}: anchor on a non-markdown target {target}"
            assert anchor in anchors(resolved), f"{page}: no heading for #{anchor} in {resolved.name}"
        checked += 1
    assert checked, f"{page} links nothing (every page links back to the others or the English docs)"


def env_example_names() -> set[str]:
    text = (PROJECT_ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.M))


def prefect_setting_names() -> set[str]:
    from prefect.settings import Settings as PrefectSettings
    from prefect.settings.legacy import _get_valid_setting_names

    return set(_get_valid_setting_names(PrefectSettings))


def project_code_text() -> str:
    files = []
    for entry in PROJECT_CODE:
        path = PROJECT_ROOT / entry
        files += [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file() and f.suffix != ".md"]
    return "\n".join(f.read_text(errors="replace") for f in files)


def mentioned_names() -> dict[str, set[str]]:
    """UPPER_CASE names (NAME, or a NAME_* prefix) per page, outside the website examples (compared below)."""
    found: dict[str, set[str]] = {}
    for path in pages():
        text = EXAMPLE.sub("", path.read_text())
        for name, star in NAME.findall(text):
            found.setdefault(name + star, set()).add(path.name)
    return found


def test_every_upper_case_name_is_a_real_setting_code_or_variable():
    settings = {name.upper() for name in Settings.model_fields}
    assert settings == env_example_names(), ".env.example and Settings disagree (test_settings_secrets says which)"
    codes = {code.value for code in ErrorCode}
    prefect = prefect_setting_names()
    code_text = project_code_text()
    unknown = {}
    for name, where in mentioned_names().items():
        if name.endswith("_*"):
            ok = any(s.startswith(name[:-1]) for s in settings | prefect)
        else:
            ok = (name in settings or name in codes or name in prefect or name in NOT_SETTINGS
                  or re.search(rf"(?<![\w]){name}(?![\w])", code_text) is not None)
        if not ok:
            unknown[name] = sorted(where)
    assert unknown == {}, ("names in docs/id that are no setting (khanza_sync/settings.py, .env.example), error code, "
                           f"Prefect setting or variable the project reads: {unknown}")


def test_the_not_settings_list_stays_true_and_used():
    settings = {name.upper() for name in Settings.model_fields}
    used = mentioned_names()
    for name in NOT_SETTINGS:
        assert name not in settings, f"{name} is a setting now: drop it from NOT_SETTINGS"
        assert name in used, f"{name} is no longer in docs/id: drop it from NOT_SETTINGS"


def settings_table() -> list[tuple[str, str]]:
    text = (DOCS_ID / "produksi.md").read_text().split("## 8.")[1]
    return re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \| ([^|]+) \|", text, re.M)


def test_the_settings_table_lists_every_setting_with_its_default():
    rows = settings_table()
    names = [name for name, _ in rows]
    expected = [name.upper() for name in Settings.model_fields]
    assert sorted(names) == sorted(expected), (
        f"docs/id/produksi.md section 8: missing {sorted(set(expected) - set(names))}, "
        f"unknown {sorted(set(names) - set(expected))}")
    compared = 0
    for name, cell in rows:
        default = Settings.model_fields[name.lower()].default
        default = default.get_secret_value() if hasattr(default, "get_secret_value") else default
        cell = cell.strip()
        if cell == "kosong":
            assert default in ("", None), f"{name}: the table says empty, the default is {default!r}"
        elif re.fullmatch(r"`[^`]+`", cell):
            value = cell.strip("`")
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                assert float(value) == default, f"{name}: the table says {value}, the default is {default!r}"
            else:
                assert value == str(default), f"{name}: the table says {value}, the default is {default!r}"
        else:  # a described default (a path in the project folder)
            assert isinstance(default, (str, Path)) and str(default).startswith(("sqlite:", str(PROJECT_ROOT))), name
            continue
        compared += 1
    assert compared >= len(rows) - 2


def without_comments(language: str, code: str) -> str:
    code = re.sub(r"/\*.*?\*/", "", code, flags=re.S)
    code = re.sub(r"--[^\n]*" if language == "sql" else r"//[^\n]*", "", code)
    return " ".join(code.split())


def test_the_website_guide_code_is_the_english_guides():
    english = {name: (lang, code) for name, lang, code in EXAMPLE.findall(ENGLISH_GUIDE.read_text())}
    indonesian = {name: (lang, code) for name, lang, code in EXAMPLE.findall((DOCS_ID / "website.md").read_text())}
    assert set(indonesian) == set(english), "docs/id/website.md carries every example of docs/website.md"
    for name, (lang, code) in english.items():
        assert indonesian[name][0] == lang, name
        assert without_comments(lang, indonesian[name][1]) == without_comments(lang, code), (
            f"example {name} differs from docs/website.md beyond its comments")


def test_the_website_guide_lists_the_english_guides_columns():
    def columns(path: Path) -> list[tuple[str, str]]:
        rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", path.read_text().split("## 2.")[0], re.M)
        return [(name, who.split()[0]) for name, who in rows]

    assert columns(DOCS_ID / "website.md") == columns(ENGLISH_GUIDE)
