"""The installed entry points answer: `khanza-sync --help` lists every job and each job has its own --help with
the flows' choices; `python -m website` creates the website table. Subprocesses, as a user runs them."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from khanza_sync.cli import build_parser

KHANZA_SYNC = str(Path(sys.executable).with_name("khanza-sync"))
JOBS = ["sync", "reconcile", "backfill", "publish-master-data", "setup", "demo", "check", "deploy", "worker", "runner", "follow",
        "requeue", "resolve-conflict", "audit"]


def test_help_lists_every_job():
    out = subprocess.run([KHANZA_SYNC, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for job in JOBS:
        assert f"    {job}" in out.stdout, job


@pytest.mark.parametrize("job", JOBS)
def test_each_job_has_its_help(job, capsys):
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([job, "--help"])
    assert done.value.code == 0
    assert f"usage: khanza-sync {job}" in capsys.readouterr().out


def test_backfill_help_offers_the_flow_parameter_choices(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["backfill", "--help"])
    text = capsys.readouterr().out
    assert "{visit,submitted}" in text and "{pending,rejected}" in text


def test_fix_subcommands_take_the_flows_choices():
    parser = build_parser()
    args = parser.parse_args(["resolve-conflict", "web-1", "--new-patient", "--by", "rina", "--reason", "checked"])
    assert (args.new_patient, args.link, args.decided_by) == (True, None, "rina")
    with pytest.raises(SystemExit):  # --link and --new-patient exclude each other; --by and --reason are required
        parser.parse_args(["resolve-conflict", "web-1", "--link", "000050", "--new-patient", "--by", "x", "--reason", "y"])
    with pytest.raises(SystemExit):
        parser.parse_args(["requeue", "web-1", "--by", "rina"])


def test_python_m_website_creates_the_table(tmp_path):
    db = tmp_path / "website.db"
    out = subprocess.run([sys.executable, "-m", "website"], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "WEBSITE_DB_URL": f"sqlite:///{db}"}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "online_registrations" in tables


def test_runner_refuses_without_its_hospital_environment(tmp_path):
    """Like the worker, the runner takes HOSPITAL_CODE, KHANZA_DB_NAME and WEBSITE_DB_URL from its own environment
    file only: its flow runs read them."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("HOSPITAL_CODE", "KHANZA_DB_NAME", "WEBSITE_DB_URL")}
    out = subprocess.run([KHANZA_SYNC, "runner"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "HOSPITAL_CODE, KHANZA_DB_NAME, WEBSITE_DB_URL" in out.stderr, out.stderr

