"""privacy.install() on Prefect's own log handlers (console and API): the filter is there once, and the
console prints masked text. Needs Prefect's logging set up, so it is not in the unit tier."""
from __future__ import annotations

import logging

from khanza_sync import privacy

NIK = "3310012345678901"


def test_install_puts_the_filter_on_prefects_handlers_once():
    import flows  # noqa: F401 - importing the flows package installs the filter

    privacy.install()
    privacy.install()
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        handlers = logging.getLogger(name).handlers
        api = [h for h in handlers if type(h).__name__ == "APILogHandler"]
        assert api, f"Prefect's API log handler missing on {name}"
        for handler in api:
            assert handler.filters.count(privacy.FILTER) == 1
    console = [h for h in logging.getLogger().handlers if type(h).__name__ == "PrefectConsoleHandler"]
    assert console and all(h.filters.count(privacy.FILTER) == 1 for h in console)


def test_prefect_console_handler_prints_masked_text():
    from prefect.logging.handlers import PrefectConsoleHandler

    import flows  # noqa: F401

    console = next(h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler))
    record = logging.getLogger("khanza.registration").makeRecord(
        "khanza.registration", logging.WARNING, __file__, 1, "registration %s refused: %s", ("web-1", NIK), None)
    assert console.filter(record)
    assert NIK not in console.format(record) and "************8901" in console.format(record)
