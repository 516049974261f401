"""Cost of the data checks per batch (pandas normalisation + the Great Expectations suite), the step every sync
and follow batch pays before Khanza is touched. The demo's eight sample registrations (fake people, four
invalid), repeated to each batch size; the first call, which builds the suite, is reported apart.

    .venv/bin/python -m bench.data_checks [--sizes 1,8,100,1000] [--repeat 15]

A benchmark, not a test: it prints the median and minimum seconds per batch; it touches no database.
"""
from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime

import pandas as pd

from data_checks import check
from khanza_sync.demo import sample_registrations
from khanza_sync.settings import Settings


def batch(size: int, today) -> pd.DataFrame:
    sample = sample_registrations(today)
    rows = [{**sample[i % len(sample)], "id": f"bench-{i}", "attempts": 1} for i in range(size)]
    return pd.DataFrame(rows, dtype=object)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,8,100,1000")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    settings = Settings(hospital_timezone="Asia/Jakarta")
    now = datetime.now(settings.tz).replace(tzinfo=None)
    started = time.perf_counter()
    check(batch(8, now.date()), settings, now)
    print(f"first call (builds the suite): {time.perf_counter() - started:.3f} s")
    for size in (int(s) for s in args.sizes.split(",")):
        frame = batch(size, now.date())
        seconds = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            valid, rejected, _ = check(frame, settings, now)
            seconds.append(time.perf_counter() - started)
        print(f"batch of {size:>5}: median {statistics.median(seconds):.3f} s, min {min(seconds):.3f} s "
              f"({len(valid)} valid, {len(rejected)} rejected)")


if __name__ == "__main__":
    main()
