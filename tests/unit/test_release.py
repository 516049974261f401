"""The release a checkout is: `khanza-sync --version`, pyproject.toml and CHANGELOG.md agree; every release the
CHANGELOG records by commit carries its version at that commit; the schema versions the newest entry states are
the code's (so a new migration step cannot land without its CHANGELOG line)."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from khanza import migrations
from khanza_sync.settings import PROJECT_ROOT
from website import contract

CHANGELOG = (PROJECT_ROOT / "CHANGELOG.md").read_text()
VERSION = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["version"]


def sections() -> dict[str, str]:
    """CHANGELOG heading ("Unreleased" or "X.Y.Z") -> its text."""
    parts = re.split(r"^## ", CHANGELOG, flags=re.M)[1:]
    return {re.match(r"(Unreleased|\d+\.\d+\.\d+)", part).group(1): part for part in parts}


def test_the_installed_release_is_the_checkout_s():
    done = subprocess.run([str(Path(sys.executable).with_name("khanza-sync")), "--version"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"khanza-sync {VERSION}", done.stdout + done.stderr


def test_the_changelog_has_the_version_and_an_unreleased_section():
    assert list(sections())[0] == "Unreleased"
    assert VERSION in sections(), f"CHANGELOG.md has no '## {VERSION}' entry"


def test_each_recorded_release_commit_carries_its_version():
    recorded = {v: m.group(1) for v, text in sections().items() if (m := re.search(r"^Commit: ([0-9a-f]{7,40})\b",
                                                                                      text, re.M))}
    for version, commit in recorded.items():
        shown = subprocess.run(["git", "show", f"{commit}:pyproject.toml"], cwd=PROJECT_ROOT, capture_output=True,
                               text=True, timeout=60)
        assert shown.returncode == 0, f"release {version}: commit {commit} is not in this clone's history"
        assert tomllib.loads(shown.stdout)["project"]["version"] == version, (version, commit)


def test_the_newest_schema_versions_are_the_code_s():
    newest = next(text for text in sections().values() if "Schema versions:" in text)
    line = re.search(r"Schema versions: Khanza side (\d+).*website contract (\d+)", newest)
    assert line, "the newest CHANGELOG entry with a 'Schema versions:' line must name both"
    assert (int(line.group(1)), int(line.group(2))) == (migrations.CURRENT, contract.CURRENT)
