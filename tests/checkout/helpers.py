"""Running the project's own commands the way a new user (or CI) would: no Khanza Sync setting in the
environment, so ports and folders are what the checkout picks by itself."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

LOCALDB = Path("khanza_sync") / "localdb.py"
# Whatever this test session was pointed at must not leak into the checkout under test.
_DROP = ("KHANZA_", "TEST_POSTGRES", "PG_TEST_DB", "PYTEST_", "VIRTUAL_ENV", "WEBSITE_", "PREFECT_API_URL")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP)}
    env.update(extra)
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def tail(done: subprocess.CompletedProcess, chars: int = 3000) -> str:
    lines = [line for line in (done.stdout + done.stderr).splitlines() if not line.startswith("WARNING: Location")]
    return "\n".join(lines)[-chars:]


def state(services_dir: Path) -> dict:
    """What the checkout remembers about its servers (services.json)."""
    return json.loads((services_dir / "services.json").read_text())
