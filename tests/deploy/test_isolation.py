"""One Unix user per hospital: what deploy/ promises, checked for real on this machine (the tests run as root).

- The units: each hospital's worker runs as `khanza-sync-%i`, the Prefect server as `khanza-sync-server`, state
  directories 0700.
- `deploy/install.sh hospital CODE` (for two throwaway hospitals) makes the Unix user `khanza-sync-CODE` and
  /etc/khanza-sync/CODE.env owned by it, mode 0600, in a folder (0711) nobody but root can list.
- As hospital A's user, hospital B's env file cannot be read, nor the environment of B's running process
  (/proc/PID/environ, where a worker's secrets live); A's own file can, and B can read its own process's
  environment (so the refusals are the users' doing, not a broken test).
The two users (and their groups) are removed afterwards; users that existed before are never touched.
"""
from __future__ import annotations

import configparser
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from khanza_sync.settings import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"


def unit(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("="))
    parser.optionxform = str
    parser.read_string((DEPLOY / "systemd" / name).read_text())
    return parser["Service"]


def test_units_run_each_hospital_and_the_server_as_their_own_user():
    worker, server = unit("khanza-sync-worker@.service"), unit("prefect-server.service")
    assert (worker["User"], worker["Group"]) == ("khanza-sync-%i", "khanza-sync-%i")
    assert (server["User"], server["Group"]) == ("khanza-sync-server", "khanza-sync-server")
    assert worker["EnvironmentFile"] == "/etc/khanza-sync/%i.env"
    assert worker["StateDirectory"] == "khanza-sync/%i" and worker["StateDirectoryMode"] == "0700"
    assert server["StateDirectory"] == "khanza-sync/prefect-server" and server["StateDirectoryMode"] == "0700"
    assert server["ReadWritePaths"] == "/var/lib/khanza-sync/prefect-server"  # not the hospitals' folders


def as_user(user: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", user, "--", *command], capture_output=True, text=True, timeout=60)


@pytest.fixture
def two_hospitals():
    """Two throwaway hospitals installed by deploy/install.sh as root: their users and env files."""
    if os.geteuid() != 0 or not shutil.which("runuser") or not shutil.which("useradd"):
        pytest.fail("this test needs root, runuser and useradd (the CI and dev machines have them)")
    tag = uuid.uuid4().hex[:6]
    codes = [f"iso{tag}a", f"iso{tag}b"]
    users = [f"khanza-sync-{c}" for c in codes]
    for user in users:
        with pytest.raises(KeyError):
            pwd.getpwnam(user)  # never touch a user that existed before
    etc = Path(tempfile.mkdtemp(prefix="khanza-sync-etc-", dir="/tmp"))  # /tmp: traversable, unlike pytest's tmp
    environ = {**os.environ, "ETC_DIR": str(etc), "SYSTEMCTL": ""}
    try:
        for code in codes:
            done = subprocess.run(["bash", str(DEPLOY / "install.sh"), "hospital", code], env=environ,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stdout + done.stderr
        yield etc, codes, users
    finally:
        for user in users:
            subprocess.run(["userdel", user], capture_output=True, timeout=60)  # --user-group: its group goes too
        shutil.rmtree(etc, ignore_errors=True)
    for user in users:
        with pytest.raises(KeyError):
            pwd.getpwnam(user)


def test_one_hospital_cannot_read_the_others_secrets(two_hospitals):
    etc, (code_a, code_b), (user_a, user_b) = two_hospitals
    file_a, file_b = etc / f"{code_a}.env", etc / f"{code_b}.env"
    assert stat.S_IMODE(etc.stat().st_mode) == 0o711
    for path, user in ((file_a, user_a), (file_b, user_b)):
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == pwd.getpwnam(user).pw_uid, path

    own = as_user(user_a, "cat", str(file_a))
    assert own.returncode == 0 and f"HOSPITAL_CODE={code_a}" in own.stdout, own.stderr
    other = as_user(user_a, "cat", str(file_b))
    assert other.returncode != 0 and "Permission denied" in other.stderr, other.stdout
    listing = as_user(user_a, "ls", str(etc))
    assert listing.returncode != 0, listing.stdout  # the folder names no hospital to a hospital's user

    # B's running process (as its worker would run: B's user, a secret in its environment)
    secret = "b-secret-" + uuid.uuid4().hex
    uid_b = pwd.getpwnam(user_b)
    proc = subprocess.Popen(["setpriv", f"--reuid={uid_b.pw_uid}", f"--regid={uid_b.pw_gid}", "--clear-groups",
                             "env", f"KHANZA_DB_PASSWORD={secret}", "sleep", "300"])
    try:
        environ = f"/proc/{proc.pid}/environ"
        deadline = time.time() + 30
        while Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")[0] != b"sleep":  # exec'd as B
            assert time.time() < deadline and proc.poll() is None, "B's process did not start"
            time.sleep(0.05)
        own_env = as_user(user_b, "cat", environ)
        assert secret in own_env.stdout, "B's own process environment should be readable by B"
        stolen = as_user(user_a, "cat", environ)
        assert stolen.returncode != 0 and secret not in stolen.stdout, stolen.stdout
    finally:
        proc.kill()
        proc.wait(timeout=30)
