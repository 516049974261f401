"""Engines shared by the tasks of a process (one pool per database, reused across batches)."""
from __future__ import annotations

from threading import Lock

from sqlalchemy import Engine

from khanza import db as khanza_db
from khanza_sync.settings import Settings, get_settings
from website import store

_engines: dict[tuple, Engine] = {}
_lock = Lock()


def _cached(key: tuple, factory) -> Engine:
    with _lock:
        if key not in _engines:
            _engines[key] = factory()
        return _engines[key]


def khanza_engine(settings: Settings | None = None) -> Engine:
    s = settings or get_settings()
    key = ("khanza", s.khanza_url().render_as_string(hide_password=False), s.khanza_connect_timeout,
           s.khanza_read_timeout, s.khanza_write_timeout)
    return _cached(key, lambda: khanza_db.make_engine(s))


def website_engine(settings: Settings | None = None) -> Engine:
    url = (settings or get_settings()).website_db_url.get_secret_value()
    return _cached(("website", url), lambda: store.make_engine(url))


def dispose_all() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
