"""One module per flow; each is a short @flow that reads like the mission, plus a `python -m` CLI.

Importing this package (every flow module does) first gives a temporary local Prefect server time to start on a
busy machine (only if the user did not choose: PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS), then masks
NIK, BPJS and phone numbers in every log record and ships the project's own loggers (khanza.*, website.*, ...)
to the flow run's logs (khanza_sync/privacy.py).
"""
import os

os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")  # before Prefect is imported
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # offline hospital networks: no telemetry

from khanza_sync import expected, privacy  # noqa: E402

privacy.install()  # mask NIK, BPJS and phone numbers in every log record before Prefect sees it
expected.install()  # a task that ends on an expected condition logs one line, no stray traceback


def flow_timeout_seconds() -> float:
    """FLOW_TIMEOUT_SECONDS for the flows' decorators, read when a flow module is imported (a worker's flow-run
    process imports it for each run; the CLI just before its run). Settings that do not load give the default
    here: the flow itself then fails with the one-line explanation."""
    from khanza_sync.settings import Settings, load_settings

    try:
        return load_settings().flow_timeout_seconds
    except Exception:  # noqa: BLE001
        return Settings.model_fields["flow_timeout_seconds"].default


def khanza_offline(error: BaseException) -> bool:
    """A transient error of Khanza's (retried, then the run defers): not one of the website database's."""
    from khanza.db import is_transient
    from khanza_sync.checkup import database_of

    return database_of(error) != "website" and is_transient(error)


def preflight(res, mappings: bool = True) -> bool:
    """A flow run's first step: the set-up mistakes `khanza-sync check` finds quickly (mappings folder, website
    table, Khanza login and ledger) end the run before any task (khanza_sync.checkup.preflight). Whether Khanza
    answered goes out as the alerts' reachable/offline event (khanza_sync/signals.py), and is returned."""
    from khanza_sync import signals
    from khanza_sync.checkup import preflight as check

    reached = check(res.settings, res.khanza, res.website, mappings)
    signals.khanza_reached(res.settings.hospital_code, reached)
    return reached


def failed_setup(error: Exception):
    """For a flow's `except Exception as error: return failed_setup(error)`: a set-up or database problem (a
    missing table, a wrong password, an unreachable or stalled database, a missing mappings folder, an invalid
    setting) ends the run Failed with one line saying which database or setting and what to fix
    (khanza_sync.checkup.explain), logged without a traceback; Khanza unreachable or stalled ends it
    `KhanzaOffline` instead (e.g. a fix run started while Khanza is down). Anything else is a bug: raised."""
    from prefect import get_run_logger
    from prefect.states import Failed

    from khanza_sync.checkup import explain

    line = explain(error)
    if line is None:
        raise error
    if khanza_offline(error):  # Khanza unreachable before the run's own offline handling: not a set-up mistake
        get_run_logger().warning("Khanza offline: %s", line)
        return offline_state(f"Khanza offline: {line}")
    get_run_logger().error(line)
    return Failed(message=line)


OFFLINE_STATE_NAME = "KhanzaOffline"  # a Failed state of this name is Khanza unreachable, nothing else


def offline_state(line: str, data=None, settings=None):
    """The Failed state a run ends in when Khanza was unreachable: named `KhanzaOffline`, so the UI's runs list
    and the alert automations (khanza_sync/alerts.py) tell it apart from a real failure without reading messages
    (its event is `prefect.flow-run.KhanzaOffline`, not `prefect.flow-run.Failed`). Also emits the
    `khanza-sync.khanza.offline` event the offline alert counts from (the hospital from `settings`, or the
    environment when a caller has none at hand)."""
    from prefect.states import Failed

    from khanza_sync import signals

    signals.khanza_reached(_hospital_code(settings), False)
    return Failed(name=OFFLINE_STATE_NAME, message=line, data=data)


def _hospital_code(settings) -> str:
    from khanza_sync.settings import Settings, load_settings

    if settings is not None:
        return settings.hospital_code
    try:
        return load_settings().hospital_code
    except Exception:  # noqa: BLE001 - settings that do not load: the run already says why
        return Settings.model_fields["hospital_code"].default


def offline_failed(error: Exception, settings, what: str, on_offline=None):
    """For a flow's `except Exception as error:` around its Khanza tasks: Khanza unreachable or stalled after
    the retries ends the run Failed with `Khanza offline: <what> (<why>)` (the next scheduled run tries again);
    anything else is raised as it was. `on_offline(line)` publishes the run's artifacts first, if given."""
    from prefect import get_run_logger

    from khanza_sync.checkup import explain, khanza_where

    if not khanza_offline(error):
        raise error
    line = f"Khanza offline: {what} ({explain(error, settings) or khanza_where(settings)})"
    get_run_logger().warning(line)
    if on_offline:
        on_offline(line)
    return offline_state(line, settings=settings)
