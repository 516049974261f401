"""Keep patient identifiers out of logs (UU 27/2022): a logging filter that masks NIK, BPJS card
numbers and Indonesian phone numbers, installed on Prefect's loggers and handlers.

What is masked: any run of digits (single spaces, dashes, dots or brackets allowed between them,
optionally a leading '+') that is
  * 16 digits (NIK),
  * 13 digits (BPJS card number), or
  * an Indonesian phone number: 0…, 62…, +62… or 8… with 9 to 15 digits in all.
Every digit but the last four becomes '*', separators stay: '0812-3456-7890' -> '****-****-7890'.
The last four digits are enough for staff to match a log line to a registration they already hold.

Names and addresses cannot be recognised by a pattern; they are kept out of logs by the code
(messages carry registration ids and error codes only). This filter is the safety net for numbers.

`install()` is idempotent and is called when the `flows` package is imported, so every flow run
(deployment, CLI or test) masks its logs before they reach the console or the Prefect API. It also ships the
project's own loggers (`khanza.*`, `website.*`, `tasks.*`, ... : PROJECT_LOGGERS) to the flow run's logs.
"""
from __future__ import annotations

import logging
import re
import traceback

from khanza_sync.rules import BPJS_DIGITS, NIK_DIGITS

__all__ = ["PiiFilter", "mask", "mask_identifier", "install", "FILTER", "KEEP_LAST"]

# A digit run: digits with at most two separator characters between them ("0812 - 3456", "(0274) 123").
_CANDIDATE = re.compile(r"(?<!\d)\+?\(?\d(?:[ \-.()]{0,2}\d)*(?!\d)")
KEEP_LAST = 4  # characters of an identifier left readable, so staff can match it to a registration


def _is_phone(digits: str) -> bool:
    if digits.startswith("62"):
        return 10 <= len(digits) <= 15
    if digits.startswith("0"):
        return 9 <= len(digits) <= 14 and digits[1:2] != "0"
    if digits.startswith("8"):
        return 9 <= len(digits) <= 13
    return False


def _sensitive(digits: str) -> bool:
    return len(digits) in (NIK_DIGITS, BPJS_DIGITS) or _is_phone(digits)


def _hide(token: str) -> str:
    """Every digit of `token` but the last four becomes '*'; separators stay."""
    to_hide = sum(ch.isdigit() for ch in token) - KEEP_LAST
    out = []
    for ch in token:
        if ch.isdigit() and to_hide > 0:
            out.append("*")
            to_hide -= 1
        else:
            out.append(ch)
    return "".join(out)


def _mask_match(match: re.Match) -> str:
    token = match.group(0)
    digits = re.sub(r"\D", "", token)
    if _sensitive(digits):
        return _hide(token)
    # A longer run can hold several numbers ("3310... 0812-3456-7890"): find the sensitive
    # stretches of whole digit groups, longest first from the left.
    parts = re.split(r"([^\d]+)", token)  # digit groups at even positions, separators between
    groups = parts[0::2]
    out: list[str] = []
    i = 0
    while i < len(groups):
        for j in range(len(groups), i, -1):
            span_digits = "".join(groups[i:j])
            if _sensitive(span_digits) or (j == i + 1 and len(span_digits) > NIK_DIGITS):
                out.append(_hide("".join(parts[2 * i:2 * j - 1])))
                if j < len(groups):
                    out.append(parts[2 * j - 1])
                i = j
                break
        else:
            out.append(groups[i])
            if i + 1 < len(groups):
                out.append(parts[2 * i + 1])
            i += 1
    return "".join(out)


# ISO dates ("2026-11-28", also in ranges like "2026-11-28..2026-11-30") are not identifiers: they are
# set aside before masking, so two dates side by side never add up to a 16-digit "NIK".
# Only a real-looking date standing alone counts, so a NIK typed in dashed groups is still masked whole.
_ISO_DATE = re.compile(r"(?<![\d-])(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?!\d|[-.]\d)")


def mask(text: str) -> str:
    """`text` with every NIK, BPJS number and phone number masked to its last four digits."""
    if not text or not any(ch.isdigit() for ch in text):
        return text
    pieces = _ISO_DATE.split(text)
    dates = _ISO_DATE.findall(text)
    out = [_CANDIDATE.sub(_mask_match, pieces[0])]
    for date_text, piece in zip(dates, pieces[1:]):
        out.append(date_text)
        out.append(_CANDIDATE.sub(_mask_match, piece))
    return "".join(out)


def mask_identifier(value) -> str:
    """An identifier for a report (e.g. no_rkm_medis): every character but the last four starred."""
    value = str(value or "")
    return "*" * max(len(value) - KEEP_LAST, 0) + value[-KEEP_LAST:]


class PiiFilter(logging.Filter):
    """Masks identifiers in the message, its arguments, the exception text and the stack.

    The message is rendered once (msg % args) and replaced by its masked form with no args left,
    so whatever a handler does with the record afterwards it only sees masked text. Never drops a
    record."""

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003 - logging's API
        if getattr(record, "_pii_masked", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg = mask(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            text = record.exc_text or "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = mask(text)
            record.exc_info = None  # handlers format exc_text; the raw exception values never reach them
        elif record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        record._pii_masked = True
        return True


FILTER = PiiFilter()

# Loggers whose records can carry registration data. Handlers are what matter (a logger's own
# filters do not see records propagated from child loggers); the logger-level filter also covers
# handlers added later to those loggers' records.
LOGGERS = ("", "prefect", "prefect.flow_runs", "prefect.task_runs", "prefect.extra", "prefect.workers",
           "khanza", "khanza_sync", "website", "tasks", "flows", "data_checks", "mappings", "sqlalchemy",
           "great_expectations")


def _add(target) -> None:
    if FILTER not in target.filters:
        target.addFilter(FILTER)


# The project's packages: their records go to the flow run's logs (UI) as well as the console.
PROJECT_LOGGERS = ("khanza", "khanza_sync", "website", "tasks", "flows", "data_checks", "mappings")
_run_log_handler: logging.Handler | None = None


def _ship_project_logs() -> None:
    """Prefect sends a flow run's `prefect.*` loggers to its API, plus those named in PREFECT_LOGGING_EXTRA_LOGGERS,
    which it reads once when it is imported: too early for a worker, which has imported Prefect before it loads
    the flows. So the project's loggers get a handler of their own: Prefect's API handler, used only inside a
    flow or task run (outside one, e.g. plain tests or `khanza-sync check`, records go to the console only and
    Prefect does not warn), and level INFO (PREFECT_LOGGING_LEVEL) unless a level was set."""
    global _run_log_handler
    from prefect.logging.handlers import APILogHandler

    if _run_log_handler is None:
        class RunLogHandler(APILogHandler):
            def emit(self, record: logging.LogRecord) -> None:
                from prefect.context import FlowRunContext, TaskRunContext

                if getattr(record, "flow_run_id", None) or FlowRunContext.get() or TaskRunContext.get():
                    super().emit(record)

        _run_log_handler = RunLogHandler()
    level = logging.getLogger("prefect.extra").getEffectiveLevel()
    for name in PROJECT_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, APILogHandler) for h in logger.handlers):  # else: EXTRA_LOGGERS did it already
            logger.addHandler(_run_log_handler)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)


def install() -> None:
    """Put the filter on every handler of the root logger and of all Prefect / pipeline loggers,
    and on those loggers themselves; ship the project's loggers to the flow run's logs. Safe to call many
    times (e.g. after logging is reconfigured)."""
    try:
        from prefect.logging.configuration import ensure_logging_setup

        ensure_logging_setup()  # Prefect's handlers must exist before we attach to them
        _ship_project_logs()
    except Exception:  # noqa: BLE001 - without Prefect, plain logging is still protected
        pass
    names = set(LOGGERS)
    names.update(n for n in logging.root.manager.loggerDict if n.split(".")[0] in {"prefect", *LOGGERS})
    for name in names:
        logger = logging.getLogger(name)
        _add(logger)
        for handler in logger.handlers:
            _add(handler)
