"""The strict Prefect global concurrency limit on Khanza writes (one writing run at a time).

It is taken once per flow run around the batch loop, not per batch: a slot released and taken again
at once made each batch wait about 2 s for the server to hand it back (measured in bench/).

Lease renewal, set on purpose (Prefect 3.9 `prefect/concurrency/_leases.py`): a slot is a lease the client
renews every 3/4 of its duration (3 tries, 1-10 s apart). With `strict=True` Prefect's default is to cancel
the holder when a renewal fails, so a Prefect server restart at that moment killed a batch that held Khanza's
numbering lock. We pass `raise_on_lease_renewal_failure=False`: the batch goes on (Prefect logs a warning).
What keeps Khanza right is not the slot but the MariaDB numbering lock (khanza/locks.py) and the ledger, so a
lapsed slot can at worst let a second run wait on that lock, never number twice. The server keeps leases in a
file (deploy/env/prefect-server.env.example: PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE=...filesystem), so after a
restart the lease is still known, the next renewal succeeds and the release frees the slot; with Prefect's
in-memory default a restart forgets the lease, the next renewal is refused, and strict Prefect would cancel the
batch. A release that fails because the server is down at that moment is logged, not raised: the batch's work
is done and written, and the lease (in the file) expires after KHANZA_SLOT_LEASE_SECONDS, when Prefect's
repossessor frees the slot. Shown by tests/deploy/test_server_restart.py.
"""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager

from prefect import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound

LEASE_SECONDS = 300  # Prefect's default lease; KHANZA_SLOT_LEASE_SECONDS (60 s to a day) overrides it


def ensure_khanza_write_limit(name: str, limit: int = 1) -> None:
    """Strict limits fail when missing; create it (limit 1) on first use."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))


@contextmanager
def khanza_write_slot(name: str, lease_seconds: float = LEASE_SECONDS):
    """Hold the Khanza write slot; strict: if it cannot be taken we fail rather than write unthrottled; a lease
    renewal that fails (the server restarting) does not cancel the batch (module docstring)."""
    ensure_khanza_write_limit(name)
    slot = concurrency(name, occupy=1, strict=True, lease_duration=lease_seconds, raise_on_lease_renewal_failure=False)
    slot.__enter__()
    try:
        yield
    except BaseException:
        _release(slot, name, lease_seconds, *sys.exc_info())
        raise
    _release(slot, name, lease_seconds, None, None, None)


def _release(slot, name: str, lease_seconds: float, *exc_info) -> None:
    try:
        slot.__exit__(*exc_info)
    except Exception as error:  # noqa: BLE001 - only a failed release lands here; the batch's own error is re-raised
        if error is exc_info[1]:
            raise
        logging.getLogger(__name__).warning(
            "could not release the Khanza write slot %s (%s: the Prefect server unreachable?); its lease ends within "
            "%g s and Prefect frees it then", name, type(error).__name__, lease_seconds)
