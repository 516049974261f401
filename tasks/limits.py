"""Make sure the global concurrency limit on Khanza writes exists (strict limits fail when missing)."""
from __future__ import annotations

from prefect import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.exceptions import ObjectNotFound


def ensure_khanza_write_limit(name: str, limit: int = 1) -> None:
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
