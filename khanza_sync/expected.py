"""Expected conditions versus bugs: what a run reports in one line, and what keeps its traceback.

Expected: Khanza or the website database unreachable, stalled, dropping the connection, busy or locked (these
are transient: retried), and set-up mistakes or refused requests (a wrong password, a missing table or right, a
missing mappings folder: not retried). `classify()` turns such an error into an `ExpectedFailure` holding the
one line (khanza_sync.checkup.explain) and the original error; anything it cannot explain is a bug and keeps
its traceback. Tasks classify before Prefect's task engine sees the error (tasks/retry.py), so the engine logs
their end as one line too.

`install()` adds a filter to Prefect's run loggers. Prefect asks for the current exception (`exc_info=True`)
even when a task ended by returning a Failed state, where no exception belongs to the record; without the
filter the console shows `NoneType: None`, or the traceback of whatever exception the flow happens to be
handling at that moment. It also keeps a task's expected end to one line instead of two.
"""
from __future__ import annotations

import logging

from khanza_sync.settings import Settings

# Words of checkup.explain's lines that name a passing condition of a reachable-in-principle database.
_PASSING = (("connection lost or refused", "connection lost"), ("is unreachable", "unreachable"),
            ("did not answer", "not answering"), ("stalled", "stalled"),
            ("dropped the connection", "dropped the connection"), ("busy or shutting down", "busy"),
            ("stayed locked", "locked by another writer"), ("another run or worker is writing", "busy"),
            ("stopped by a timeout", "timed out"))


class ExpectedFailure(Exception):
    """An expected condition, with its one line (`line`), a short form for retry messages (`reason`), whether a
    later attempt can cure it (`transient`), and the error it explains (`error`)."""

    def __init__(self, line: str, reason: str, transient: bool, error: BaseException):
        super().__init__(line)
        self.line, self.reason, self.transient, self.error = line, reason, transient, error

    def __repr__(self) -> str:  # Prefect shows the state's data in its log line: keep it short, the line is there
        return "ExpectedFailure()"


def classify(error: BaseException, settings: Settings | None = None) -> ExpectedFailure | None:
    """The expected condition `error` stands for, or None for a bug."""
    from khanza.db import is_transient
    from khanza_sync.checkup import database_of, explain

    if isinstance(error, ExpectedFailure):
        return error
    line = explain(error, settings)
    if line is None and is_transient(error):  # a passing database error without a line of its own (e.g. 1927)
        line = f"{_where(error, settings)}: connection lost or refused ({_first_line(error)})"
    if line is None:
        return None
    condition = next((short for words, short in _PASSING if words in line), None)
    if condition == "unreachable" and "(" in line.split("is unreachable", 1)[1][:3]:
        reason_text = line.split("is unreachable", 1)[1].split(")", 1)[0].strip(" (")
        condition = f"unreachable ({reason_text})"
    which = {"khanza": "Khanza", "website": "website database"}.get(database_of(error) or "", "")
    if "Khanza database" in line and not which:
        which = "Khanza"
    reason = f"{which} {condition}".strip() if condition else line
    return ExpectedFailure(line, reason, condition is not None and condition != "timed out", error)


def _where(error: BaseException, settings: Settings | None) -> str:
    from khanza_sync.checkup import database_of, khanza_where, website_where
    from khanza_sync.settings import load_settings

    settings = settings or load_settings()
    return website_where(settings) if database_of(error) == "website" else khanza_where(settings)


def _first_line(error: BaseException) -> str:
    """The driver's message, first line only (SQLAlchemy adds SQL and links below; values are hidden)."""
    lines = str(getattr(error, "orig", None) or error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


class NoStrayTraceback(logging.Filter):
    """Drops exception info from a record that has no exception of its own (see the module's docstring), and
    Prefect's "Task run failed with state" record of a task that ended on an expected condition: its
    "Finished in state Failed('<the line>')" right after says the same in one line."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003 - logging's API
        if "result=ExpectedFailure()" in str(record.msg) and str(record.msg).startswith("Task run failed with state"):
            return False
        stray = record.exc_info is not None and record.exc_info is not False and (
            not isinstance(record.exc_info, tuple) or record.exc_info[0] is None)
        if stray or str(record.msg).startswith("Task run failed with state"):  # a returned state: no exception
            record.exc_info, record.exc_text = None, None
        return True


FILTER = NoStrayTraceback()
RUN_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")


def install() -> None:
    """Idempotent; on the run loggers themselves (the engines log through them directly)."""
    for name in RUN_LOGGERS:
        logger = logging.getLogger(name)
        if FILTER not in logger.filters:
            logger.addFilter(FILTER)
