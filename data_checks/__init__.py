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
                  "after_same_day_cutoff", "name_length", "created_ahead_seconds", "created_in_future",
                  "region_invalid", "region_inconsistent"]


def check(df: pd.DataFrame, settings: Settings, now_local: datetime) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """A report entry of the created_at-in-the-future rule that failed carries `offset_seconds`: how far ahead
    of the pipeline's clock its rows' created_at lie at most (the size of the website's clock or zone error)."""
    frame = _normalize.normalize(df, now_local=now_local, tz=settings.tz,
                                 cutoff_hour=settings.booking_same_day_cutoff_hour,
                                 max_skew_seconds=settings.created_at_max_skew_seconds)
    if frame.empty:
        return frame, pd.DataFrame(columns=["id", "error_code", "message", "next_attempt_at"]), []
    for column in ["birth_days", "birth_year", "visit_days_from_today", "days_ahead_at_submission", "name_length",
                   "created_ahead_seconds"]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    report = _suite.validate(frame, settings.booking_max_days_ahead)
    ahead = dict(zip(frame["id"].astype(str), frame["created_ahead_seconds"]))
    for entry in report:
        if entry["code"] == ErrorCode.CREATED_AT_IN_FUTURE.value and entry["ids"]:
            entry["offset_seconds"] = max(ahead[i] for i in entry["ids"])

    first_error: dict[str, str] = {}
    for entry in report:  # report is in rule order: the first failing rule names the error
        for reg_id in entry["ids"]:
            first_error.setdefault(reg_id, entry["code"])
    ids = frame["id"].astype(str)
    bad = ids.isin(first_error.keys())
    rejections = pd.DataFrame({"id": frame.loc[bad, "id"], "error_code": ids[bad].map(first_error)})
    rejections["message"] = [ErrorCode(c).website_message for c in rejections["error_code"]]
    # A row waiting for its created_at to stop lying in the future comes back when it has (no retry before that
    # can find it otherwise); khanza_sync.outcomes turns it into a deferral, never a rejection.
    now_utc = pd.Timestamp(now_local).tz_localize(settings.tz).tz_convert("UTC").tz_localize(None)
    rejections["next_attempt_at"] = [
        (now_utc + pd.Timedelta(seconds=ahead[str(i)] - settings.created_at_max_skew_seconds)).to_pydatetime()
        if c == ErrorCode.CREATED_AT_IN_FUTURE.value else None
        for i, c in zip(rejections["id"], rejections["error_code"])]
    valid = frame.loc[~bad].drop(columns=HELPER_COLUMNS).reset_index(drop=True)
    return valid, rejections.reset_index(drop=True), report
