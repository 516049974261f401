"""khanza_sync/expected.py: which errors are expected conditions (one line, retried if passing) and which are bugs;
and the filter that keeps a stray traceback off a record that has no exception of its own."""
from __future__ import annotations

import io
import logging

import pytest
from sqlalchemy import create_engine, text

from khanza_sync.checkup import SetupProblem
from khanza_sync.expected import NoStrayTraceback, classify
from khanza_sync.settings import Settings
from tests.support import free_port

SETTINGS = Settings(_env_file=None, khanza_db_host="127.0.0.1", khanza_db_port=free_port(), khanza_db_name="sik",
                    website_db_url="sqlite:////nonexistent-folder/web.db")


def raised(fn) -> BaseException:
    try:
        fn()
    except Exception as error:  # noqa: BLE001
        return error
    raise AssertionError("nothing raised")


def khanza_refused() -> BaseException:
    """A real PyMySQL 'connection refused' through SQLAlchemy (nothing listens on the port)."""
    from khanza.db import make_engine

    engine = make_engine(SETTINGS)
    try:
        return raised(lambda: engine.connect())
    finally:
        engine.dispose()


def test_khanza_refusing_is_transient_with_a_short_reason():
    failure = classify(khanza_refused(), SETTINGS)
    assert failure is not None and failure.transient
    assert failure.reason == "Khanza unreachable (connection refused)"
    assert failure.line.startswith(f"Khanza database 'sik' at 127.0.0.1:{SETTINGS.khanza_db_port} is unreachable")
    assert "\n" not in failure.line


def test_website_file_that_cannot_be_opened_is_expected_but_not_retried():
    engine = create_engine(SETTINGS.website_db_url.get_secret_value())
    error = raised(lambda: engine.connect().execute(text("SELECT 1")))
    failure = classify(error, SETTINGS)
    assert failure is not None and not failure.transient
    assert failure.line.startswith("website SQLite file /nonexistent-folder/web.db cannot be opened")


def test_set_up_mistake_is_expected_not_transient():
    failure = classify(SetupProblem("mappings folder /x does not exist: set MAPPINGS_DIR"), SETTINGS)
    assert failure is not None and not failure.transient and failure.reason == failure.line


@pytest.mark.parametrize("bug", [RuntimeError("boom"), KeyError("no_rawat"), ZeroDivisionError()])
def test_anything_unexplained_is_a_bug(bug):
    assert classify(bug, SETTINGS) is None


def logged(exc_info, msg="Task run failed with state: Failed(message='x')") -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("test_expected.stray")
    logger.addHandler(handler)
    logger.addFilter(NoStrayTraceback())
    logger.propagate = False
    try:
        logger.error(msg, exc_info=exc_info)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_no_stray_traceback_on_a_returned_state():
    assert logged(True).strip() == "Task run failed with state: Failed(message='x')"  # not "NoneType: None"
    try:
        raise ValueError("being handled elsewhere")
    except ValueError:
        assert "Traceback" not in logged(True)  # the state's record is not that exception's


def test_a_real_exception_keeps_its_traceback():
    try:
        raise ValueError("a bug")
    except ValueError:
        text_ = logged(True, msg="Task run failed with exception: ValueError('a bug')")
    assert "Traceback (most recent call last)" in text_ and "ValueError: a bug" in text_


def test_a_task_ended_on_an_expected_condition_is_said_once():
    record = "Task run failed with state: Failed(message='x', type=FAILED, result=ExpectedFailure())"
    assert logged(None, msg=record) == ""
