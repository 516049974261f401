"""The pipeline's own log lines (khanza.*, website.*, tasks.*: khanza_sync.privacy.PROJECT_LOGGERS) reach the flow
run's logs on the Prefect server, masked like Prefect's own; outside a run they stay on the console (no API
warning)."""
from __future__ import annotations

import logging
import time
import warnings

import pytest
from prefect import flow, get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

from flows.sync_registrations import sync_registrations
from khanza_sync import privacy
from tests.support import insert_registrations, registration

NIK = "3399887766554433"


def run_logs(state, wanted: str, timeout: float = 15.0) -> list:
    """The flow run's logs as the UI reads them (from the API), once a line containing `wanted` arrived."""
    from prefect.logging.handlers import APILogHandler

    for handler in logging.getLogger("prefect.flow_runs").handlers:
        if isinstance(handler, APILogHandler):
            handler.flush()
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            logs = client.read_logs(log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))
        if any(wanted in log.message for log in logs) or time.monotonic() > deadline:
            return logs
        time.sleep(0.3)


@flow(name="project-logger-canary")
def canary():
    logging.getLogger("khanza.registration").warning("registration canary-1 refused by Khanza: patient %s", NIK)


def test_khanza_logger_reaches_the_run_logs_masked():
    state = canary(return_state=True)
    assert state.is_completed()
    logs = run_logs(state, "canary-1")
    [line] = [log for log in logs if "canary-1" in log.message]
    assert line.name == "khanza.registration"
    assert NIK not in line.message and "************4433" in line.message


@pytest.mark.parametrize("website_url", ["sqlite"], indirect=True)
def test_sync_run_logs_hold_the_pipelines_own_lines(flow_env):
    insert_registrations(flow_env, [registration(id="logs-1")])
    state = sync_registrations(return_state=True)
    assert state.is_completed(), state.message
    logs = run_logs(state, "Khanza database")
    names = {log.name for log in logs}
    assert "khanza.db" in names and "tasks.resources" in names, names  # which databases the run used
    khanza_line = next(log.message for log in logs if log.name == "khanza.db")
    assert "timeouts: connect" in khanza_line


def test_project_loggers_outside_a_run_do_not_warn():
    privacy.install()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Prefect's API handler would warn "without a flow run id"
        logging.getLogger("website.store").warning("outside any flow run")
