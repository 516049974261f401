"""Retry policy for Khanza access: exponential backoff with jitter, only for transient errors."""
from __future__ import annotations

from prefect.tasks import exponential_backoff

from khanza.db import is_transient
from khanza_sync.settings import Settings


def retry_if_transient(task, task_run, state) -> bool:
    """Prefect retry_condition_fn: retry connection loss, timeouts, deadlocks; never data errors."""
    try:
        state.result()
    except Exception as error:  # noqa: BLE001
        return is_transient(error)
    return False


def khanza_retry_options(settings: Settings, *, retries: int | None = None, delay: float | None = None) -> dict:
    """KHANZA_RETRIES with KHANZA_RETRY_DELAY_SECONDS (exponential); `retries`/`delay` cap them (follow mode)."""
    retries = settings.khanza_retries if retries is None else min(retries, settings.khanza_retries)
    delay = settings.khanza_retry_delay_seconds if delay is None else min(delay, settings.khanza_retry_delay_seconds)
    return {
        "retries": retries,
        "retry_delay_seconds": exponential_backoff(backoff_factor=delay) if delay > 0 else 0,
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": retry_if_transient,
    }
