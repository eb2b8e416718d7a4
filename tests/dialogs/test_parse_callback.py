"""dialogs.parse.parse_callback_result: reading the rater's reply to the SMS callback question
("对整改结果满意请回复1，基本满意请回复2，不满意请回复3").

CONTRACT "Callback results" (satisfied, basically_satisfied, dissatisfied; `unreachable` is never a reply)
and "Vocabulary" (full-width digits and the Chinese words, with text around them).
"""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from dialogs.parse import normalize, parse_callback_result

MEANING = {"1": "satisfied", "2": "basically_satisfied", "3": "dissatisfied"}
RESULTS = frozenset(MEANING.values())
FULL_WIDTH = {d: chr(ord("０") + int(d)) for d in "0123456789"}
# Ways of giving each answer: digits ASCII and full-width, and words (simplified and traditional).
ANSWERS: dict[str, tuple[str, ...]] = {
    "satisfied": ("1", "１", "满意", "滿意", "非常满意"),
    "basically_satisfied": ("2", "２", "基本满意", "基本滿意"),
    "dissatisfied": ("3", "３", "不满意", "不滿意", "不太满意", "非常不满意"),
}
TOKENS = [(token, meaning) for meaning, tokens in ANSWERS.items() for token in tokens]

HUGE = (
    "1" * 100_000,
    "满意" * 50_000,
    "１ ３ " * 20_000,
    "https://" + "3" * 100_000,
    "\x00\x01\x1b\x7f" * 10_000,
)


# --- examples ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("1", "satisfied", id="1"),
    pytest.param("2", "basically_satisfied", id="2"),
    pytest.param("3", "dissatisfied", id="3"),
    pytest.param("１", "satisfied", id="fullwidth-1"),
    pytest.param("２", "basically_satisfied", id="fullwidth-2"),
    pytest.param("３", "dissatisfied", id="fullwidth-3"),
    pytest.param(" 2\n", "basically_satisfied", id="blanks-around"),
    pytest.param("\u30003\u3000", "dissatisfied", id="ideographic-spaces"),
    pytest.param("1。", "satisfied", id="full-stop"),
    pytest.param("回复1", "satisfied", id="text-before"),
    pytest.param("3，谢谢", "dissatisfied", id="fullwidth-comma-after"),
    pytest.param("满意", "satisfied", id="word-satisfied"),
    pytest.param("基本满意", "basically_satisfied", id="word-basically"),
    pytest.param("不满意", "dissatisfied", id="word-dissatisfied"),
    pytest.param("滿意", "satisfied", id="traditional-satisfied"),
    pytest.param("基本滿意", "basically_satisfied", id="traditional-basically"),
    pytest.param("不滿意", "dissatisfied", id="traditional-dissatisfied"),
    pytest.param("非常满意", "satisfied", id="very-satisfied-is-satisfied"),
    pytest.param("非常不满意", "dissatisfied", id="very-dissatisfied-is-dissatisfied"),
    pytest.param("不太满意", "dissatisfied", id="not-quite-satisfied"),
    pytest.param("整改后我觉得基本满意吧", "basically_satisfied", id="word-in-a-sentence"),
    pytest.param("还是不满意，问题没有解决", "dissatisfied", id="longest-word-wins"),
    pytest.param("1 满意", "satisfied", id="digit-and-word-agree"),
    pytest.param("３ 不满意", "dissatisfied", id="fullwidth-digit-and-word-agree"),
    pytest.param("1 1", "satisfied", id="same-answer-twice"),
    pytest.param("2026年11月20日办的事，满意", "satisfied", id="a-date-is-not-an-answer"),
    pytest.param("satisfied", "satisfied", id="english-satisfied"),
    pytest.param("Basically satisfied.", "basically_satisfied", id="english-basically"),
    pytest.param("not satisfied: DISSATISFIED", "dissatisfied", id="english-negation-and-its-word-agree"),
    pytest.param("not satisfied: SATISFIED", None, id="english-two-meanings"),
])
def test_examples(text: str, expected: str | None) -> None:
    assert parse_callback_result(text) == expected


@pytest.mark.parametrize("text", [
    pytest.param("4", id="4"),
    pytest.param("5", id="5-the-rating-menus-very-dissatisfied"),
    pytest.param("0", id="0"),
    pytest.param("９", id="fullwidth-9"),
    pytest.param("13", id="13"),
    pytest.param("１３", id="fullwidth-13"),
    pytest.param("12", id="12"),
    pytest.param("1 3", id="1-and-3"),
    pytest.param("1,2", id="1-comma-2"),
    pytest.param("2、3", id="2-and-3"),
    pytest.param("1 4", id="good-then-bad-digit"),
    pytest.param("4 1", id="bad-then-good-digit"),
    pytest.param("满意 3", id="word-and-digit-disagree"),
    pytest.param("2 满意", id="basically-digit-and-satisfied-word"),
    pytest.param("满意还是不满意", id="two-words-disagree"),
    pytest.param("", id="empty"),
    pytest.param("   ", id="blank"),
    pytest.param("hello", id="hello"),
    pytest.param("好的", id="no-answer-in-it"),
    pytest.param("https://x.example.cn/1", id="digit-inside-a-link"),
    pytest.param("2026", id="a-year"),
    pytest.param("13800138000", id="a-phone-number"),
])
def test_no_single_answer_is_none(text: str) -> None:
    assert parse_callback_result(text) is None


@pytest.mark.parametrize("text", HUGE, ids=["ones", "words", "fullwidth-pairs", "link", "controls"])
def test_huge_inputs(text: str) -> None:
    assert parse_callback_result(text) in (None, *RESULTS)


# --- properties ----------------------------------------------------------------------------------------

_ANY_WORD = re.compile("满|滿|satisf", re.IGNORECASE)
# Filler that can hold no answer: no digit and no letter-based word, even after NFKC (which turns
# e.g. "①" into "1" and "ｓａｔｉｓｆｉｅｄ" into "satisfied"); checked again after folding below.
_FILLER = st.one_of(
    st.sampled_from(["", " ", "，谢谢！", "回复", "我", "整改后", "\n", "：", "\u3000", "。", "好的"]),
    st.text(alphabet=st.characters(exclude_categories=("Nd", "No", "Nl", "Lu", "Ll", "Lt", "Cs")), max_size=20),
)


_NAMED_FILLERS = frozenset({"，谢谢！", "回复", "我", "整改后", "好的"})


def _neutral(filler: str) -> bool:
    """Filler that says nothing: one of the named ones, or only blanks, punctuation, symbols and emoji. Any
    other letter could be read with the answer (blanks do not separate words: "不 满意" is 不满意), and a
    question mark makes a question of the reply."""
    if filler in _NAMED_FILLERS:
        return True
    folded = normalize(filler)
    return not any(unicodedata.category(c)[0] in "LNM" or c in "?？" for c in folded)


@given(st.text())
@example("")
@example("\u0300\u0301")
@example("\ud7ff\U0010ffff")
@example("１\u20e3")  # keycap
@example("①")
@example("https://")
def test_never_raises_and_answers_a_result_or_none(text: str) -> None:
    assert parse_callback_result(text) in (None, *RESULTS)


@given(st.text(alphabet=st.sampled_from(list("0123456789１２３４０ 满滿意不基本非常太,，、。https:/xa")), max_size=30))
def test_never_raises_on_answer_like_text(text: str) -> None:
    assert parse_callback_result(text) in (None, *RESULTS)


@given(st.text(alphabet=st.sampled_from(list("0123456789 满意不基本非常,、。abc:/")), max_size=30))
def test_full_width_digits_read_as_ascii_ones(text: str) -> None:
    wide = "".join(FULL_WIDTH.get(c, c) for c in text)
    assert parse_callback_result(wide) == parse_callback_result(text)


@given(st.sampled_from(TOKENS), _FILLER, _FILLER)
def test_one_answer_among_neutral_text_is_read(token: tuple[str, str], prefix: str, suffix: str) -> None:
    assume(_neutral(prefix) and _neutral(suffix))
    written, meaning = token
    assert parse_callback_result(f"{prefix} {written} {suffix}") == meaning


@given(st.sampled_from(TOKENS), st.sampled_from(TOKENS), st.sampled_from([" ", "，", "、", " 还是 ", "\n"]))
def test_two_answers_are_read_only_when_they_agree(a: tuple[str, str], b: tuple[str, str], sep: str) -> None:
    result = parse_callback_result(a[0] + sep + b[0])
    assert result == (a[1] if a[1] == b[1] else None)


@given(st.sampled_from(TOKENS), st.sampled_from("0456789"), st.booleans(), st.booleans())
def test_a_digit_the_question_did_not_offer_spoils_the_reply(token: tuple[str, str], bad: str, wide: bool,
                                                             first: bool) -> None:
    digit = FULL_WIDTH[bad] if wide else bad
    text = f"{digit} {token[0]}" if first else f"{token[0]} {digit}"
    assert parse_callback_result(text) is None


@given(st.integers(min_value=10, max_value=10**15), _FILLER)
def test_longer_numbers_alone_are_never_answers(number: int, tail: str) -> None:
    assume(_neutral(tail))
    assert parse_callback_result(f"{number}{tail}") is None
    assert parse_callback_result("".join(FULL_WIDTH[c] for c in str(number))) is None


@given(_FILLER)
def test_neutral_text_alone_is_no_answer(text: str) -> None:
    assume(_neutral(text))
    assert parse_callback_result(text) is None
