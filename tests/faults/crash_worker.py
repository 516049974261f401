"""Subprocess for the crash tests: load a pickled, already mapped batch into Khanza with the real
`khanza.registration.load_batch` (settings from the environment, like the pipeline), then die by SIGKILL
before any write-back: the crash between the Khanza commit and the website update.

    python -m tests.faults.crash_worker <batch.pkl>

The parent may also SIGKILL this process while the batch is still loading (mid-transaction).
Prints nothing about the registrations.
"""
from __future__ import annotations

import os
import signal
import sys
from datetime import datetime

import pandas as pd


def main(path: str) -> None:
    from khanza.db import make_engine
    from khanza.registration import load_batch
    from khanza_sync.settings import load_settings

    settings = load_settings()
    mapped = pd.read_pickle(path)
    engine = make_engine(settings)
    print("loading", flush=True)
    load_batch(engine, mapped, settings, datetime.now(settings.tz).replace(tzinfo=None))
    os.kill(os.getpid(), signal.SIGKILL)  # no write-back, no clean shutdown, connections left open


if __name__ == "__main__":
    main(sys.argv[1])
