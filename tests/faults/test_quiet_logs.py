"""Expected conditions are one line each, in the console and in the Prefect run's logs; bugs keep their traceback.

`khanza-sync sync` runs as an operator runs it (a subprocess, on the session's Prefect server) against a Khanza
behind the fault proxy that refuses or stalls, a website database nobody listens on, or one that stalls in the
middle of the run (its write-back retried). Its console output and
the logs Prefect stored for its flow run (read back from the API) must hold no traceback, and the retries must
say what they wait for in one line. A run that hits a bug (a mapping function raising, in-process) still logs
its traceback.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.faults.helpers import registrations, run_sync
from tests.faults.test_timeouts import WEBSITE_FAST, pg_proxy, proxied  # noqa: F401 - pg_proxy is a fixture
from tests.support import free_port

KHANZA_BIN = Path(sys.executable).with_name("khanza-sync")
ON_SQLITE = pytest.mark.parametrize("website_url", ["sqlite"], indirect=True)


def cli_sync(tmp_path: Path) -> tuple[int, str, datetime]:
    """`khanza-sync sync` in a subprocess with this test's environment: (exit code, console output, start)."""
    from prefect.settings import PREFECT_API_URL

    started = datetime.now(timezone.utc) - timedelta(seconds=1)
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run([str(KHANZA_BIN), "sync"], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    print(done.stdout + done.stderr)  # shown with -s, or when the test fails
    return done.returncode, done.stdout + done.stderr, started


def run_logs(started: datetime, last_words: str, flow_run_id=None, timeout: float = 60) -> list[str]:
    """Every log message Prefect stored for the one sync run started after `started` (or `flow_run_id`),
    waiting until the message holding `last_words` has arrived."""
    from prefect import get_client
    from prefect.client.schemas.filters import (FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterStartTime,
                                                LogFilter, LogFilterFlowRunId)
    from prefect.client.schemas.sorting import LogSort
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)  # in-process runs: what this process still holds
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        if flow_run_id is None:
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["sync-registrations"])),
                flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=started)))
            assert len(runs) == 1, [r.name for r in runs]
            flow_run_id = runs[0].id
        while True:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                                    sort=LogSort.TIMESTAMP_ASC)
            messages = [log.message for log in logs]
            if any(last_words in m for m in messages) or time.monotonic() > deadline:
                assert any(last_words in m for m in messages), messages
                return messages


def assert_quiet(output: str, messages: list[str]) -> None:
    assert "Traceback" not in output, output
    for message in messages:
        assert "Traceback" not in message, message
        assert "\n" not in message.strip(), message  # one line each
    assert "NoneType: None" not in output


@ON_SQLITE
def test_khanza_refusing_connections_is_one_line_per_retry(fault_env, monkeypatch, tmp_path):
    fault_env.configure(monkeypatch, KHANZA_RETRIES=2, KHANZA_RETRY_DELAY_SECONDS=0.1)
    fault_env.insert(registrations(3, prefix="quiet"))
    fault_env.proxy.refuse()

    code, output, started = cli_sync(tmp_path)

    assert code == 1, output
    messages = run_logs(started, "Khanza offline")
    assert_quiet(output, messages)
    for where in (output, "\n".join(messages)):
        assert "retry 1/2 in " in where and "retry 2/2 in " in where, where
        assert "s: Khanza unreachable (connection refused)" in where, where
        assert "3 registrations" in where and "Khanza offline: 3 deferred" in where, where
    # the task's end is said once, by Prefect's "Finished in state Failed('<the line>')"
    ended = [m for m in messages if "Khanza database" in m and "is unreachable (connection refused)" in m]
    assert len([m for m in ended if m.startswith("Finished in state Failed(")]) == 1, messages
    assert not any(m.startswith("Task run failed") for m in messages), messages
    assert {r["status"] for r in fault_env.rows().values()} == {"pending"}


@ON_SQLITE
def test_stalled_khanza_is_one_line_per_retry(fault_env, monkeypatch, tmp_path):
    fault_env.configure(monkeypatch, KHANZA_RETRIES=1, KHANZA_RETRY_DELAY_SECONDS=0.1, KHANZA_CONNECT_TIMEOUT=1,
                        KHANZA_READ_TIMEOUT=2, KHANZA_WRITE_TIMEOUT=1, KHANZA_LOCK_TIMEOUT_SECONDS=1)
    fault_env.insert(registrations(2, prefix="stalled"))
    fault_env.proxy.stall(120)  # accepts TCP connections, answers nothing

    code, output, started = cli_sync(tmp_path)
    fault_env.proxy.unstall()

    assert code == 1, output
    messages = run_logs(started, "Khanza offline")
    assert_quiet(output, messages)
    for where in (output, "\n".join(messages)):
        assert "retry 1/1 in " in where, where
        assert "Khanza not answering" in where or "Khanza stalled" in where, where
        assert "Khanza offline: 2 deferred" in where, where


@pytest.mark.parametrize("website_url", ["postgresql"], indirect=True)
def test_unreachable_website_database_is_one_line(fault_env, monkeypatch, tmp_path):
    nobody = free_port()  # a PostgreSQL URL with nothing listening
    url = make_url(fault_env.website_url).set(port=nobody)
    monkeypatch.setenv("WEBSITE_DB_URL", url.render_as_string(hide_password=False))

    code, output, started = cli_sync(tmp_path)

    assert code != 0, output
    messages = run_logs(started, "is unreachable")
    assert_quiet(output, messages)
    assert f"website database {url.database!r} at {url.host}:{nobody} (postgresql) is unreachable" in output, output


@ON_SQLITE
def test_a_bug_keeps_its_traceback(fault_env, monkeypatch):
    import mappings

    def broken(*_args, **_kwargs):
        raise RuntimeError("injected bug in the mapping step")

    monkeypatch.setattr(mappings, "apply", broken)
    fault_env.insert(registrations(2, prefix="bug"))

    state = run_sync()

    assert state.is_failed()
    messages = run_logs(None, "injected bug", flow_run_id=state.state_details.flow_run_id)
    traced = [m for m in messages if "Traceback" in m]
    assert traced and any("RuntimeError: injected bug in the mapping step" in m for m in traced), messages
    # and the registrations wait as PIPELINE_ERROR, never lost
    assert {(r["status"], r["error_code"]) for r in fault_env.rows().values()} == {("pending", "PIPELINE_ERROR")}


@pytest.mark.parametrize("website_url", ["postgresql"], indirect=True)
def test_website_stalling_mid_run_is_one_line_per_retry(fault_env, monkeypatch, pg_proxy, tmp_path):
    """The website's PostgreSQL stalls while the batch is being loaded: the write-back's retries and the run's
    end are one line each, naming the website."""
    fault_env.configure(monkeypatch, WEBSITE_DB_URL=proxied(fault_env.website_url, pg_proxy), **WEBSITE_FAST)
    fault_env.insert(registrations(2, prefix="wquiet"))
    fault_env.proxy.call_before_query(1, lambda: pg_proxy.stall(120), match=b"INSERT INTO reg_periksa")

    code, output, started = cli_sync(tmp_path)
    pg_proxy.unstall()

    assert code != 0, output
    messages = run_logs(started, "retry 3/3")
    assert_quiet(output, messages)
    for where in (output, "\n".join(messages)):
        assert "retry 1/3 in 5 s: website database " in where and "retry 3/3 in 5 s" in where, where
    assert output.startswith("website database"), output  # the run's message, printed first (stdout)
