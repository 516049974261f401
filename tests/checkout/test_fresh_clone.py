"""The README's two commands in a fresh clone where a new user puts it: a folder only its owner can enter
(0700, like /root or a new user's home on Debian 12, or `mktemp -d`), on a path with spaces, as CI runs them
(CI=true, nothing set by hand). The clone is of this checkout's HEAD (committed work only). The unit tier stands
for `./dev test` here: the whole suite in a second checkout would double CI's time; what matters is that the
setup, both private servers and pytest start there."""
from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from khanza_sync.settings import PROJECT_ROOT
from tests.checkout.helpers import LOCALDB, clean_env, run, state, tail


def test_demo_and_test_run_from_a_fresh_clone_in_a_private_folder_with_spaces():
    top = Path(tempfile.mkdtemp(prefix="khanza-clone-"))
    assert stat.S_IMODE(top.stat().st_mode) == 0o700
    checkout = top / "my projects" / "khanza sync"
    # The clone's own pytest session keeps its numbered temp folders apart: sharing /tmp/pytest-of-USER with this
    # session, it would count this session's folder among the old ones it removes.
    env = clean_env(CI="true", PYTEST_DEBUG_TEMPROOT=str(top))
    try:
        subprocess.run(["git", "clone", "-q", str(PROJECT_ROOT), str(checkout)], check=True, timeout=120)

        demo = run(["./dev", "demo"], checkout, env, timeout=900)
        assert demo.returncode == 0, tail(demo)
        assert "8 registrations: created=4 duplicate=0 rejected=4 deferred=0" in demo.stdout, tail(demo)
        status = run([sys.executable, str(LOCALDB), "status"], checkout, env, timeout=60).stdout
        assert "MariaDB" in status and ": running" in status.splitlines()[0], status
        assert ": stopped" in status.splitlines()[1], status  # the demo uses no PostgreSQL: not started

        ci = run(["bash", ".ci/run", "tests/unit", "-x"], checkout, env, timeout=900)
        assert ci.returncode == 0, tail(ci)
        assert re.search(r"^\d+ passed in ", ci.stdout, re.M) and "failed" not in ci.stdout, tail(ci)

        where = state(checkout / ".services")
        if os.geteuid() == 0:  # the postgres user cannot enter the 0700 folder: its data lives outside
            pg_dir = Path(where["postgres_dir"])
            assert pg_dir.is_dir() and top not in pg_dir.parents
            assert pg_dir.stat().st_uid == int(subprocess.check_output(["id", "-u", "postgres"]))
        with psycopg.connect(host="127.0.0.1", port=where["postgres_port"], user="postgres", dbname="postgres",
                             connect_timeout=10) as conn:
            assert conn.execute("SHOW data_directory").fetchone()[0].startswith(where["postgres_dir"] or str(checkout))
    finally:
        if (checkout / LOCALDB).exists():
            removed = run([sys.executable, str(LOCALDB), "remove"], checkout, clean_env(), timeout=120)
            assert removed.returncode == 0, tail(removed)
        shutil.rmtree(top, ignore_errors=True)
