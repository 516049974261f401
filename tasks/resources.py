"""What a flow hands to its tasks: the settings it read once and the two engines.

Engines are kept per process (one pool per database, reused across batches and flow runs of a
long-lived worker process), keyed by everything that shapes the connection.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import wraps
from threading import Lock

from sqlalchemy import Engine

from khanza import db as khanza_db
from khanza_sync.settings import Settings
from website import store

log = logging.getLogger(__name__)
_engines: dict[tuple, Engine] = {}
_lock = Lock()


@dataclass(frozen=True)
class Resources:
    settings: Settings
    khanza: Engine
    website: Engine


def _cached(key: tuple, factory) -> Engine:
    with _lock:
        if key not in _engines:
            _engines[key] = factory()
        return _engines[key]


def khanza_engine(settings: Settings) -> Engine:
    key = ("khanza", settings.khanza_url().render_as_string(hide_password=False), settings.khanza_connect_timeout,
           settings.khanza_read_timeout, settings.khanza_write_timeout)
    return _cached(key, lambda: khanza_db.make_engine(settings))


def website_engine(settings: Settings) -> Engine:
    """The website engine with WEBSITE_CONNECT_TIMEOUT and WEBSITE_STATEMENT_TIMEOUT_SECONDS (website/store.py)."""
    url = settings.website_db_url.get_secret_value()
    connect, statement = settings.website_connect_timeout, settings.website_statement_timeout_seconds

    def factory() -> Engine:
        engine = store.make_engine(url, connect_timeout=connect, statement_timeout=statement)
        log.info("website database %s (timeouts: connect %ss, statement %ss)",
                 engine.url.render_as_string(hide_password=True), connect, statement)
        return engine

    return _cached(("website", url, connect, statement), factory)


def timed(task, settings: Settings, **options):
    """`task` with this run's TASK_TIMEOUT_SECONDS (and `options`), called so that an expected condition the task
    ended on (a Failed state whose data is khanza_sync.expected.ExpectedFailure, see tasks/retry.py) is raised
    here as the original error, for the flow's own handling; a bug is raised as it was. The timeout is Prefect's
    backstop; the database drivers' own timeouts end a stalled call first (see the README)."""
    from khanza_sync.expected import ExpectedFailure

    configured = task.with_options(timeout_seconds=settings.task_timeout_seconds, **options)

    @wraps(task.fn)
    def call(*args, **kwargs):
        state = configured(*args, return_state=True, **kwargs)
        try:
            return state.result()
        except ExpectedFailure as failure:
            raise failure.error from None

    return call


def open_resources(settings: Settings) -> Resources:
    return Resources(settings, khanza_engine(settings), website_engine(settings))


def dispose_all() -> None:
    """Close every pooled connection (tests that switch databases, the end of a long-lived process)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
