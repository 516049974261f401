"""Stand-ins for running the loader's in-memory decisions without MariaDB (imported by unit tests)."""
from __future__ import annotations

import contextlib
from datetime import date, datetime

from khanza import registration
from khanza.masterdata import MasterData
from khanza.numbering import DayBook
from khanza.patients import PatientIndex
from khanza_sync.settings import Settings

CLOCK = datetime(2026, 11, 27, 9, 0)


class NoSQL:
    """A connection the loader may open transactions on but never send SQL through: the decisions under test
    are taken before anything is read or written."""

    def begin(self):
        return contextlib.nullcontext()

    def execute(self, *args, **kwargs):
        raise AssertionError("no SQL expected before this decision")


def batch(day: date, *, md: MasterData | None = None, book: DayBook | None = None,
          people: PatientIndex | None = None, **settings) -> registration.Batch:
    """A loader batch as if read from Khanza: master data, one visit day's numbers, the patients found."""
    return registration.Batch(settings=Settings(_env_file=None, **settings), md=md or MasterData(), fixed_clock=CLOCK,
                              people=people or PatientIndex(), days={day: book or DayBook(day=day, scope="dokter")})


def registration_row(day: date, **overrides) -> dict:
    """A mapped registration as the loader receives it."""
    return {"id": "web-1", "nik": "3310012345678901", "bpjs_number": None, "visit_date": day, "kd_poli": "INT",
            "kd_dokter": "D001", "kd_pj": "A09", "attempts": 1, **overrides}
