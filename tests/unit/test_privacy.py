"""privacy.py: NIK, BPJS and phone numbers are masked to their last four digits wherever logged."""
from __future__ import annotations

import io
import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from khanza_sync import privacy

NIK = "3310012345678901"
BPJS = "0001234567890"


@pytest.mark.parametrize("raw, masked", [
    (f"nik {NIK}", "nik ************8901"),
    (f"kartu={BPJS}", "kartu=*********7890"),
    ("0812-3456-7890", "****-****-7890"),
    ("081234567890", "********7890"),
    ("+6281234567890", "+*********7890"),
    ("+62 812 3456 7890", "+** *** **** 7890"),
    ("62 812-3456-7890", "** ***-****-7890"),
    ("0812.3456.7890", "****.****.7890"),
    ("(0812) 3456 7890", "(****) **** 7890"),
    ("812-3456-7890", "***-****-7890"),
    ("3310 0123 4567 8901", "**** **** **** 8901"),  # NIK typed in groups
    (f"{NIK}, 081234567890", "************8901, ********7890"),
    (f"{NIK} 081234567890", "************8901 ********7890"),  # two numbers in one digit run
    ("x" + NIK + "y", "x************8901y"),
])
def test_mask_hides_all_but_last_four_digits(raw, masked):
    assert privacy.mask(raw) == masked


@pytest.mark.parametrize("text", [
    "2026/11/27/000123",  # no_rawat
    "no_reg 007, no_rkm_medis 000101",
    "2026-11-27 12:34:56.123456",
    "batch 3: created=40, rejected=2, duplicate=1",
    "flow run 123e4567-e89b-12d3-a456-426614174000",
    "500 registrations in 1.25 s",
    "web-0a1b2c3d4e5f",
    "",
])
def test_mask_leaves_ordinary_numbers_alone(text):
    assert privacy.mask(text) == text


digits = st.text(alphabet="0123456789", min_size=1, max_size=1)
separators = st.sampled_from(["", "", " ", "-", "."])


@st.composite
def phone_numbers(draw):
    subscriber = "8" + draw(st.text(alphabet="0123456789", min_size=8, max_size=11))
    prefix = draw(st.sampled_from(["0", "62", "+62", "+62 ", "62-", ""]))
    sep = draw(separators)
    groups = [subscriber[i:i + 4] for i in range(0, len(subscriber), 4)]
    return prefix + sep.join(groups)


@settings(database=None, max_examples=200, deadline=None)
@given(number=st.one_of(
    st.text(alphabet="0123456789", min_size=16, max_size=16),  # NIK
    st.text(alphabet="0123456789", min_size=13, max_size=13),  # BPJS
    phone_numbers(),
), before=st.text(alphabet=st.characters(blacklist_categories=("Nd", "Cs")), max_size=20),
    after=st.text(alphabet=st.characters(blacklist_categories=("Nd", "Cs")), max_size=20))
def test_identifiers_never_survive_masking(number, before, after):
    out = privacy.mask(f"{before}{number}{after}")
    only_digits = re.sub(r"\D", "", number)
    assert only_digits not in re.sub(r"\D", "", out) or len(only_digits) <= 4
    assert re.sub(r"\D", "", out).endswith(only_digits[-4:])
    assert out.startswith(before) and out.endswith(after)


def _logger_with_capture(name: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(privacy.PiiFilter())
    logger = logging.getLogger(name)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_filter_masks_message_args_and_dict_args():
    logger, stream = _logger_with_capture("test_privacy.args")
    logger.info("patient %s phone %s", NIK, "+62 812-3456-7890")
    logger.info("row %(nik)s / %(card)s", {"nik": NIK, "card": BPJS})
    logger.warning(f"inline {NIK}")
    out = stream.getvalue()
    assert NIK not in out and BPJS not in out and "3456-7890" not in out
    assert out.count("************8901") == 3 and "*********7890" in out


def test_filter_masks_exception_text_and_stack():
    logger, stream = _logger_with_capture("test_privacy.exc")
    try:
        raise ValueError(f"Duplicate entry '{NIK}' for key 'no_ktp' (phone 081234567890)")
    except ValueError:
        logger.exception("insert failed")
    logger.info("where am I", stack_info=True)
    out = stream.getvalue()
    assert "Traceback" in out and "ValueError" in out  # the traceback is still there
    assert NIK not in out and "081234567890" not in out
    assert "************8901" in out


def test_filter_keeps_records_and_survives_bad_format_strings():
    logger, stream = _logger_with_capture("test_privacy.bad")
    logger.info("two placeholders %s %s", NIK)  # wrong arity: logging would normally print an error
    assert "8901" in stream.getvalue() and NIK not in stream.getvalue()


def test_dates_and_date_ranges_are_not_masked():
    from khanza_sync.privacy import mask

    assert mask("backfill 2026-11-28..2026-11-30 by visit") == "backfill 2026-11-28..2026-11-30 by visit"
    assert mask("visit 2026-11-28 NIK 3310012345678901") == "visit 2026-11-28 NIK ************8901"


def test_a_nik_in_date_like_groups_is_still_masked():
    from khanza_sync.privacy import mask

    assert "2345-6789" not in mask("NIK 2010-01-01-2345-6789 typed with dashes")
    assert mask("2010-01-01-2345-6789").endswith("6789") and "2010" not in mask("2010-01-01-2345-6789")
