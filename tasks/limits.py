"""The strict Prefect global concurrency limit on Khanza writes (one writing run at a time).

It is taken once per flow run around the batch loop, not per batch: a slot released and taken again
at once made each batch wait about 2 s for the server to hand it back (measured in bench/).
"""
from __future__ import annotations

from contextlib import contextmanager

from prefect import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound


def ensure_khanza_write_limit(name: str, limit: int = 1) -> None:
    """Strict limits fail when missing; create it (limit 1) on first use."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))


@contextmanager
def khanza_write_slot(name: str):
    """Hold the Khanza write slot; strict: if it cannot be taken we fail rather than write unthrottled."""
    ensure_khanza_write_limit(name)
    with concurrency(name, occupy=1, strict=True):
        yield
