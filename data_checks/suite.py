"""The Great Expectations suite, as code. Each expectation carries the error code a failing row gets;
the list order is the priority when a row fails several.

Results are requested with only the registration id as the unexpected-index column and no raw
values, so no NIK or phone number can reach a result, log or artifact.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from khanza_sync.error_codes import ErrorCode
from khanza_sync.rules import (BPJS_DIGITS, BPJS_PAYMENT, BPJS_REGEX, GENDER_CODES, NAME_MAX, NAME_REGEX, NIK_DIGITS,
                               NIK_REGEX, PAYMENTS, PHONE_REGEX)


@dataclass(frozen=True)
class Rule:
    name: str
    code: ErrorCode
    expectation: object  # a gx expectation instance


@lru_cache(maxsize=1)
def _nik_expectation_class():
    """Our custom expectation, defined once per process (GX registers every subclass it sees)."""
    import great_expectations.expectations as gxe  # heavy import: only where validation runs

    class ExpectColumnValuesToBeValidNik(gxe.ExpectColumnValuesToMatchRegex):
        """NIK: 16 digits and not all zeros."""

        regex: str = NIK_REGEX
        description: str = f"NIK is {NIK_DIGITS} digits, not all zeros"

    return ExpectColumnValuesToBeValidNik


def build_rules(max_days_ahead: int) -> list[Rule]:
    import great_expectations.expectations as gxe

    ExpectColumnValuesToBeValidNik = _nik_expectation_class()
    bpjs = f'payment=="{BPJS_PAYMENT}"'
    return [
        Rule("id unique", ErrorCode.DUPLICATE_ID, gxe.ExpectColumnValuesToBeUnique(column="id")),
        # Before every rule judged by the submission time: a row whose created_at is in the future waits (the
        # website's clock or zone is off) rather than being rejected by a window computed from a wrong time.
        Rule("created_at not in the future (website clock)", ErrorCode.CREATED_AT_IN_FUTURE,
             gxe.ExpectColumnValuesToBeInSet(column="created_in_future", value_set=[False])),
        Rule("created_at present and a timestamp", ErrorCode.INVALID_CREATED_AT,
             gxe.ExpectColumnValuesToNotBeNull(column="created_ahead_seconds")),
        Rule("nik present", ErrorCode.INVALID_NIK, gxe.ExpectColumnValuesToNotBeNull(column="nik")),
        Rule(f"nik {NIK_DIGITS} digits", ErrorCode.INVALID_NIK, ExpectColumnValuesToBeValidNik(column="nik")),
        Rule("name present", ErrorCode.MISSING_NAME, gxe.ExpectColumnValuesToNotBeNull(column="full_name")),
        Rule("name fits Khanza", ErrorCode.NAME_TOO_LONG,
             gxe.ExpectColumnValuesToBeBetween(column="name_length", max_value=NAME_MAX)),
        Rule("name characters", ErrorCode.INVALID_NAME,
             gxe.ExpectColumnValuesToMatchRegex(column="full_name", regex=NAME_REGEX)),
        Rule("birth date valid", ErrorCode.INVALID_BIRTH_DATE, gxe.ExpectColumnValuesToNotBeNull(column="birth_date")),
        Rule("birth date not in future", ErrorCode.INVALID_BIRTH_DATE,
             gxe.ExpectColumnValuesToBeBetween(column="birth_days", min_value=0)),
        Rule("birth year from 1900", ErrorCode.INVALID_BIRTH_DATE,
             gxe.ExpectColumnValuesToBeBetween(column="birth_year", min_value=1900)),
        Rule("gender present", ErrorCode.INVALID_GENDER, gxe.ExpectColumnValuesToNotBeNull(column="gender")),
        Rule("gender L/P", ErrorCode.INVALID_GENDER,
             gxe.ExpectColumnValuesToBeInSet(column="gender", value_set=list(GENDER_CODES))),
        Rule("phone present", ErrorCode.INVALID_PHONE, gxe.ExpectColumnValuesToNotBeNull(column="phone")),
        Rule("phone plausible", ErrorCode.INVALID_PHONE,
             gxe.ExpectColumnValuesToMatchRegex(column="phone", regex=PHONE_REGEX)),
        Rule("address present", ErrorCode.MISSING_ADDRESS, gxe.ExpectColumnValuesToNotBeNull(column="address")),
        Rule("visit date valid", ErrorCode.INVALID_VISIT_DATE, gxe.ExpectColumnValuesToNotBeNull(column="visit_date")),
        Rule("visit date not passed", ErrorCode.VISIT_DATE_PASSED,
             gxe.ExpectColumnValuesToBeBetween(column="visit_days_from_today", min_value=0)),
        Rule("visit within booking window", ErrorCode.OUTSIDE_BOOKING_WINDOW,
             gxe.ExpectColumnValuesToBeBetween(column="days_ahead_at_submission", min_value=0,
                                               max_value=max_days_ahead)),
        Rule("same-day cut-off", ErrorCode.OUTSIDE_BOOKING_WINDOW,
             gxe.ExpectColumnValuesToBeInSet(column="after_same_day_cutoff", value_set=[False])),
        Rule("payment present", ErrorCode.INVALID_PAYMENT, gxe.ExpectColumnValuesToNotBeNull(column="payment")),
        Rule("payment known", ErrorCode.INVALID_PAYMENT,
             gxe.ExpectColumnValuesToBeInSet(column="payment", value_set=list(PAYMENTS))),
        # The patient's region (optional): Kemendagri codes that exist, names Khanza can store, levels that fit
        # together per the reference list (khanza_sync/regions.py)
        Rule("region codes and names valid", ErrorCode.INVALID_REGION,
             gxe.ExpectColumnValuesToBeInSet(column="region_invalid", value_set=[False])),
        Rule("region levels consistent", ErrorCode.INCONSISTENT_REGION,
             gxe.ExpectColumnValuesToBeInSet(column="region_inconsistent", value_set=[False])),
        Rule("bpjs number present", ErrorCode.INVALID_BPJS_NUMBER,
             gxe.ExpectColumnValuesToNotBeNull(column="bpjs_number", row_condition=bpjs, condition_parser="pandas")),
        Rule(f"bpjs number {BPJS_DIGITS} digits", ErrorCode.INVALID_BPJS_NUMBER,
             gxe.ExpectColumnValuesToMatchRegex(column="bpjs_number", regex=BPJS_REGEX, row_condition=bpjs,
                                                condition_parser="pandas")),
    ]


_PREPARED: dict[int, tuple[list[Rule], object]] = {}  # BOOKING_MAX_DAYS_AHEAD -> (rules, ValidationDefinition)
_GX_LOCK = threading.Lock()  # GX is not thread-safe: one validation at a time in a process


def _prepare(rules: list[Rule]):
    """An ephemeral GX context holding the suite and its validation definition. Adding the expectations is
    about half of a small batch's validation time, so it is done once per process (per max_days_ahead)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("registrations").add_dataframe_asset("batch")
    batch_definition = asset.add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(gx.ExpectationSuite(name="registrations"))
    for index, rule in enumerate(rules):
        rule.expectation.meta = {"rule": index}
        suite.add_expectation(rule.expectation)
    return context.validation_definitions.add(
        gx.ValidationDefinition(name="registrations", data=batch_definition, suite=suite))


def validate(frame: pd.DataFrame, max_days_ahead: int) -> list[dict]:
    """Run the suite over one batch. Returns per expectation: name, code, success, failing ids."""
    with _GX_LOCK:
        if max_days_ahead not in _PREPARED:
            rules = build_rules(max_days_ahead)
            _PREPARED[max_days_ahead] = (rules, _prepare(rules))
        rules, validation = _PREPARED[max_days_ahead]
        result = validation.run(
            batch_parameters={"dataframe": frame},
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["id"],
                           "exclude_unexpected_values": True, "return_unexpected_index_query": False},
        )
    report = []
    for res in result.results:
        rule = rules[res.expectation_config.meta["rule"]]
        if res.exception_info and res.exception_info.get("raised_exception"):
            # GX reports a crashed metric as a failure; never reject rows for our own bug.
            # (The exception text is not repeated: it could quote row values.)
            raise RuntimeError(f"data check '{rule.name}' could not run")
        index_list = res.result.get("unexpected_index_list") or []
        failing: list[str] = []
        for item in index_list:  # [{"id": value}] or [{"id": [values]}] depending on the expectation
            value = item["id"] if isinstance(item, dict) else item
            failing.extend(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
        report.append({"name": rule.name, "code": rule.code.value, "success": bool(res.success), "ids": failing})
    return report
