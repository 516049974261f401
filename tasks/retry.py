"""How every pipeline task fails and retries: `@step`, Prefect's @task with the project's retry handling.

Inside the task, before Prefect's task engine sees an error, it is classified (khanza_sync.expected):
- a transient condition (a database unreachable, stalled, busy) is retried here, with one line each time:
  `retry 1/3 in 10 s: Khanza unreachable (connection refused)`;
- an expected condition that stays (retries exhausted, a set-up mistake, a refused request) ends the task run
  Failed with its one line as the message: Prefect logs that line, no traceback;
- anything else is a bug: raised, and Prefect logs it with its traceback (not retried).
Prefect's own retries stay off: they log the exception's repr and, once exhausted, its traceback.

The flows call tasks through tasks.resources.timed, which raises the original error again in the flow, where
the flows' existing handling (Khanza offline, one-line set-up failures) takes it.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed
from prefect.utilities.math import clamped_poisson_interval

from khanza_sync.expected import classify
from khanza_sync.settings import Settings


@dataclass(frozen=True)
class RetryPolicy:
    retries: int
    delay_seconds: float
    exponential: bool = False  # delay, 2 x delay, 4 x delay, ...
    jitter: float = 0.0  # spread retries of concurrent runs (Prefect's clamped Poisson interval)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry `attempt` (1-based)."""
        base = self.delay_seconds * (2 ** (attempt - 1) if self.exponential else 1)
        return clamped_poisson_interval(base, clamping_factor=self.jitter) if self.jitter and base > 0 else base


NO_RETRY = RetryPolicy(0, 0)


def khanza_retry(settings: Settings) -> RetryPolicy:
    """Khanza access: KHANZA_RETRIES with exponential backoff from KHANZA_RETRY_DELAY_SECONDS, jittered."""
    return RetryPolicy(settings.khanza_retries, settings.khanza_retry_delay_seconds, exponential=True, jitter=0.5)


def fixed_retry(retries: int, delay_seconds: float) -> Callable[[Settings], RetryPolicy]:
    """The website's short hiccups (a lock, a restart): a few retries a fixed delay apart."""
    return lambda _settings: RetryPolicy(retries, delay_seconds)


def _settings_of(args) -> Settings | None:
    first = args[0] if args else None
    return first if isinstance(first, Settings) else getattr(first, "settings", None)


def _seconds(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")


def step(name: str, retry: Callable[[Settings], RetryPolicy] | None = None, **options):
    """@task(name=...) for a stage taking the run's Resources (or Settings) first, with the handling above.
    `retry(settings)` gives the retry policy for transient conditions (none if omitted)."""

    def decorate(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            settings = _settings_of(args)
            policy = retry(settings) if retry and settings is not None else NO_RETRY
            attempt = 0
            while True:
                try:
                    return fn(*args, **kwargs)
                except Exception as error:
                    failure = classify(error, settings)
                    if failure is None:
                        raise  # a bug: Prefect logs it with its traceback
                    if not (failure.transient and attempt < policy.retries):
                        return Failed(message=failure.line, data=failure)
                attempt += 1
                delay = policy.delay(attempt)
                get_run_logger().warning("retry %d/%d in %s s: %s", attempt, policy.retries, _seconds(delay),
                                         failure.reason)
                time.sleep(delay)

        return task(name=name, cache_policy=NO_CACHE, persist_result=False, **options)(run)

    return decorate


def capped(settings: Settings, *, retries: int, delay: float) -> Settings:
    """`settings` with KHANZA_RETRIES / KHANZA_RETRY_DELAY_SECONDS capped (follow mode's shorter Khanza retry: its
    probe resumes as soon as Khanza answers, so a long backoff inside a batch only delays that)."""
    return settings.model_copy(update={"khanza_retries": min(retries, settings.khanza_retries),
                                       "khanza_retry_delay_seconds": min(delay, settings.khanza_retry_delay_seconds)})
