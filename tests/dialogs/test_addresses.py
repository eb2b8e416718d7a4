"""Tests for dialogs.addresses: one E.164 form per phone, and masks that never reveal a whole identifier."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from dialogs.addresses import mask_name, mask_openid, mask_phone, normalize_phone

CN = "+8613800138000"


# --- normalize_phone: examples -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected",
    [
        pytest.param("13800138000", CN, id="national"),
        pytest.param("+8613800138000", CN, id="e164"),
        pytest.param("+86 138-0013-8000", CN, id="e164-with-blanks-and-dashes"),
        pytest.param("008613800138000", CN, id="00-prefix"),
        pytest.param("138 0013 8000", CN, id="national-with-blanks"),
        pytest.param("(+86) 138.0013.8000", CN, id="parentheses-and-dots"),
        pytest.param("  13800138000\n", CN, id="surrounding-blanks"),
        pytest.param("19912345678", "+8619912345678", id="new-prefix-199"),
        pytest.param("16612345678", "+8616612345678", id="prefix-166"),
        pytest.param("+447700900123", "+447700900123", id="uk-mobile"),
        pytest.param("+44 7700 900123", "+447700900123", id="uk-with-blanks"),
        pytest.param("00447700900123", "+447700900123", id="uk-00-prefix"),
        pytest.param("+12025550123", "+12025550123", id="us"),
        pytest.param("+852 6123 4567", "+85261234567", id="hong-kong"),
    ],
)
def test_normalize_phone(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("12345", id="short-hotline"),
        pytest.param("1380013800a", id="letter"),
        pytest.param("138001380001", id="twelve-digits"),
        pytest.param("1380013800", id="ten-digits"),
        pytest.param("12800138000", id="second-digit-2"),
        pytest.param("23800138000", id="not-starting-with-1"),
        pytest.param("+8612345678901", id="cn-not-mobile"),
        pytest.param("+86 10 6552 9988", id="cn-landline"),
        pytest.param("+861380013800", id="cn-too-short"),
        pytest.param("+86138001380001", id="cn-too-long"),
        pytest.param("+", id="plus-only"),
        pytest.param("+1", id="country-code-only"),
        pytest.param("+0123456789", id="country-code-zero"),
        pytest.param("+12345678901234567890", id="too-long"),
        pytest.param("+44abc", id="letters-after-plus"),
        pytest.param("+٤٤٧٧٠٠٩٠٠١٢٣", id="non-ascii-digits"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blanks"),
        pytest.param("oABCDEFGHIJKLMN", id="openid"),
    ],
)
def test_normalize_phone_rejects(raw: str) -> None:
    assert normalize_phone(raw) is None


@pytest.mark.parametrize("raw", [None, 13800138000, 8613800138000.0, b"13800138000", ["13800138000"]],
                         ids=["none", "int", "float", "bytes", "list"])
def test_normalize_phone_non_strings_are_none(raw: object) -> None:
    assert normalize_phone(raw) is None


# --- normalize_phone: properties ---------------------------------------------------------------------

_CN_MOBILES = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
_SEP = st.sampled_from(["", " ", "-", ".", "  ", "\t"])


@st.composite
def written_cn_mobiles(draw: st.DrawFn) -> tuple[str, str]:
    """A Chinese mobile in one of the ways people and providers write it, and its E.164 form."""
    number = draw(_CN_MOBILES)
    prefix = draw(st.sampled_from(["", "+86", "+86 ", "0086", "0086 ", "(+86)", "+86-"]))
    groups = (number[:3], number[3:7], number[7:])
    body = groups[0] + draw(_SEP) + groups[1] + draw(_SEP) + groups[2]
    pad = st.sampled_from(["", " ", "\n"])
    return draw(pad) + prefix + body + draw(pad), "+86" + number


@given(written_cn_mobiles())
def test_every_written_form_of_a_cn_mobile_is_one_e164(written: tuple[str, str]) -> None:
    raw, e164 = written
    assert normalize_phone(raw) == e164
    assert normalize_phone(e164) == e164


_PHONEY = st.one_of(
    st.text(),
    st.text(alphabet="0123456789+-() .", max_size=25),
    st.from_regex(r"\+?(00)?[0-9]{1,17}", fullmatch=True),
    written_cn_mobiles().map(lambda w: w[0]),
)


@given(_PHONEY)
@example("+86" + "1" * 100_000)
@example("1" * 100_000)
@example("\x00+\x0013800138000")
@example("004900")  # phonenumbers calls +4900 "possible"; it is no number anyone can text
def test_normalize_phone_is_total_and_e164(raw: str) -> None:
    result = normalize_phone(raw)
    assert result is None or isinstance(result, str)
    if result is not None:
        assert result.startswith("+")
        assert re.fullmatch(r"\+[1-9][0-9]{6,14}", result), result


# Chinese numbers and arbitrary text: normalising twice changes nothing.
@given(
    st.one_of(st.text(), written_cn_mobiles().map(lambda w: w[0]), st.from_regex(r"\+86[0-9]{6,12}", fullmatch=True))
)
def test_normalize_phone_round_trips(raw: str) -> None:
    once = normalize_phone(raw)
    if once is not None:
        assert normalize_phone(once) == once


# Regression: phonenumbers drops a national trunk "0" after the country code, which once made
# +49006273689 -> +4906273689 -> +496273689 (one person, three spellings).
@given(st.from_regex(r"\+[1-9][0-9]{4,15}", fullmatch=True))
@example("+49006273689")
@example("+4906273689")
@example("+310063536400")
@example("+44 07700 900123")
def test_normalize_phone_round_trips_for_foreign_numbers(raw: str) -> None:
    once = normalize_phone(raw)
    if once is not None:
        assert normalize_phone(once) == once


# --- masks ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "e164, expected",
    [
        pytest.param("+8613800131234", "138****1234", id="cn"),
        pytest.param("+8619912345678", "199****5678", id="cn-199"),
        pytest.param("+447700900123", "+44****0123", id="foreign"),
        pytest.param("+123456", "****", id="too-short-to-show-anything"),
        pytest.param("+1234567", "+12****4567", id="eight-chars"),
        pytest.param("", "****", id="empty"),
    ],
)
def test_mask_phone(e164: str, expected: str) -> None:
    assert mask_phone(e164) == expected


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


@given(st.one_of(_CN_MOBILES.map(lambda n: "+86" + n), _PHONEY.map(normalize_phone).filter(bool)))
def test_mask_phone_hides_the_middle(e164: str) -> None:
    masked = mask_phone(e164)
    assert len(_digits(masked)) <= 7
    assert "****" in masked
    assert e164 not in masked
    if e164.startswith("+86"):
        assert re.fullmatch(r"1[3-9][0-9]\*{4}[0-9]{4}", masked)
        assert masked[:3] == e164[3:6] and masked[-4:] == e164[-4:]


@given(st.text())
@example("1" * 100_000)
def test_mask_phone_never_shows_more_than_seven_digits(text: str) -> None:
    masked = mask_phone(text)
    assert len(_digits(masked)) <= 7
    assert "****" in masked


@pytest.mark.parametrize(
    "name, expected",
    [
        pytest.param("张三", "张*", id="two-chars"),
        pytest.param("欧阳娜娜", "欧***", id="four-chars"),
        pytest.param("李", "李*", id="one-char-still-masked"),
        pytest.param("  王五 ", "王*", id="trimmed"),
        pytest.param("", "", id="empty"),
        pytest.param("   ", "", id="blanks"),
    ],
)
def test_mask_name(name: str, expected: str) -> None:
    assert mask_name(name) == expected


@given(st.text())
def test_mask_name_keeps_only_the_first_character(name: str) -> None:
    masked = mask_name(name)
    stripped = name.strip()
    if not stripped:
        assert masked == ""
    else:
        assert masked[0] == stripped[0]
        assert set(masked[1:]) == {"*"}
        assert len(masked) == max(len(stripped), 2)


@pytest.mark.parametrize(
    "openid, expected",
    [
        pytest.param("oABCDEFGHIJKLMN", "oABC****KLMN", id="openid"),
        pytest.param("12345678901", "1234****8901", id="eleven-chars"),
        pytest.param("1234567890", "****", id="ten-chars"),
        pytest.param("", "****", id="empty"),
    ],
)
def test_mask_openid(openid: str, expected: str) -> None:
    assert mask_openid(openid) == expected


@given(st.text())
def test_mask_openid_never_shows_the_whole_openid(openid: str) -> None:
    masked = mask_openid(openid)
    assert "****" in masked
    assert len(masked) - 4 <= 8
    if len(openid) > 10:
        assert masked == openid[:4] + "****" + openid[-4:]
        assert len(openid) - 8 >= 3  # at least three characters hidden
    else:
        assert masked == "****"
