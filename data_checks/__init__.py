"""Data checks: pandas normalisation (normalize.py) then the Great Expectations suite (suite.py).

One entry point: check(df, ...) -> (valid rows in Khanza's shapes, rejections, per-rule report).
"""
from __future__ import annotations

from datetime import datetime

import pandas as pd

from data_checks import normalize as _normalize
from data_checks import suite as _suite
from khanza_sync.error_codes import ErrorCode
from khanza_sync.settings import Settings

HELPER_COLUMNS = ["birth_days", "birth_year", "visit_days_from_today", "days_ahead_at_submission",
                  "after_same_day_cutoff", "name_length"]


def check(df: pd.DataFrame, settings: Settings, now_local: datetime) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    frame = _normalize.normalize(df, now_local=now_local, tz=settings.tz,
                                 cutoff_hour=settings.booking_same_day_cutoff_hour)
    if frame.empty:
        return frame, pd.DataFrame(columns=["id", "error_code", "message"]), []
    for column in ["birth_days", "birth_year", "visit_days_from_today", "days_ahead_at_submission", "name_length"]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    report = _suite.validate(frame, settings.booking_max_days_ahead)

    first_error: dict[str, str] = {}
    for entry in report:  # report is in rule order: the first failing rule names the error
        for reg_id in entry["ids"]:
            first_error.setdefault(reg_id, entry["code"])
    ids = frame["id"].astype(str)
    bad = ids.isin(first_error.keys())
    rejections = pd.DataFrame({"id": frame.loc[bad, "id"], "error_code": ids[bad].map(first_error)})
    rejections["message"] = [ErrorCode(c).website_message for c in rejections["error_code"]]
    valid = frame.loc[~bad].drop(columns=HELPER_COLUMNS).reset_index(drop=True)
    return valid, rejections.reset_index(drop=True), report
