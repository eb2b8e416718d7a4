"""Tests for dialogs.parse (and the digit table of dialogs.grades): reading grades, reasons and opt-outs."""

from __future__ import annotations

import itertools
import re
import unicodedata

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from dialogs.grades import DIGIT_OF, PROMPT_DIGITS, SCORES, Grade, parse_grade_name
from dialogs.parse import MAX_TEXT, clean_text, has_words, is_opt_out, normalize, parse_grade, parse_reasons

G = Grade
# The default policy's reasons (bot/policy/rules.py), copied so that these tests do not depend on the policy module.
LABELS: tuple[str, ...] = (
    "服务态度差",
    "办事效率低",
    "办事流程繁琐",
    "办事指南不清楚",
    "多次跑动",
    "平台不好用",
    "收费不合理",
    "其他",
)
LABELS_15: tuple[str, ...] = tuple(f"原因{c}" for c in "甲乙丙丁戊己庚辛壬癸子丑寅卯辰")

HUGE = (
    "1" * 100_000,
    "满意" * 50_000,
    "\x00\x01\x1b\x7f" * 10_000,
    "１ ２ ３ " * 20_000,
    "https://" + "4" * 100_000,
)


# --- grades.py: the tables the parser relies on ------------------------------------------------------


@pytest.mark.parametrize(
    "digit, grade, score, bad",
    [
        ("1", G.VERY_SATISFIED, 10, False),
        ("2", G.SATISFIED, 8, False),
        ("3", G.BASICALLY_SATISFIED, 6, False),
        ("4", G.DISSATISFIED, 3, True),
        ("5", G.VERY_DISSATISFIED, 0, True),
    ],
    ids=["1-very_satisfied", "2-satisfied", "3-basically", "4-dissatisfied", "5-very_dissatisfied"],
)
def test_prompt_digit_table(digit: str, grade: Grade, score: int, bad: bool) -> None:
    assert PROMPT_DIGITS[digit] is grade
    assert DIGIT_OF[grade] == digit
    assert grade.score == score == SCORES[grade]
    assert grade.is_bad is bad


def test_grade_values_are_the_api_vocabulary() -> None:
    assert [g.value for g in Grade] == [
        "very_satisfied", "satisfied", "basically_satisfied", "dissatisfied", "very_dissatisfied",
    ]
    assert set(PROMPT_DIGITS) == {"1", "2", "3", "4", "5"}


@pytest.mark.parametrize(
    "value, expected",
    [
        ("very_satisfied", G.VERY_SATISFIED),
        ("dissatisfied", G.DISSATISFIED),
        ("Very_Satisfied", None),
        ("1", None),
        ("", None),
        (1, None),
        (None, None),
        (G.SATISFIED, G.SATISFIED),
    ],
    ids=["very_satisfied", "dissatisfied", "wrong-case", "digit", "empty", "int", "none", "enum"],
)
def test_parse_grade_name(value: object, expected: Grade | None) -> None:
    assert parse_grade_name(value) is expected


# --- parse_grade: examples ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("1", G.VERY_SATISFIED, id="digit-1"),
        pytest.param("2", G.SATISFIED, id="digit-2"),
        pytest.param("3", G.BASICALLY_SATISFIED, id="digit-3"),
        pytest.param("4", G.DISSATISFIED, id="digit-4"),
        pytest.param("5", G.VERY_DISSATISFIED, id="digit-5"),
        pytest.param(" 2\n", G.SATISFIED, id="digit-with-blanks"),
        pytest.param("１", G.VERY_SATISFIED, id="fullwidth-1"),
        pytest.param("４", G.DISSATISFIED, id="fullwidth-4"),
        pytest.param("５", G.VERY_DISSATISFIED, id="fullwidth-5"),
        pytest.param("非常满意", G.VERY_SATISFIED, id="zh-very-satisfied"),
        pytest.param("满意", G.SATISFIED, id="zh-satisfied"),
        pytest.param("基本满意", G.BASICALLY_SATISFIED, id="zh-basically"),
        pytest.param("不满意", G.DISSATISFIED, id="zh-dissatisfied"),
        pytest.param("非常不满意", G.VERY_DISSATISFIED, id="zh-very-dissatisfied-longest-wins"),
        pytest.param("非常滿意", G.VERY_SATISFIED, id="zht-very-satisfied"),
        pytest.param("滿意", G.SATISFIED, id="zht-satisfied"),
        pytest.param("基本滿意", G.BASICALLY_SATISFIED, id="zht-basically"),
        pytest.param("不滿意", G.DISSATISFIED, id="zht-dissatisfied"),
        pytest.param("非常不滿意", G.VERY_DISSATISFIED, id="zht-very-dissatisfied"),
        pytest.param("very satisfied", G.VERY_SATISFIED, id="en-very-satisfied"),
        pytest.param("Satisfied", G.SATISFIED, id="en-satisfied-capital"),
        pytest.param("basically satisfied", G.BASICALLY_SATISFIED, id="en-basically"),
        pytest.param("DISSATISFIED", G.DISSATISFIED, id="en-dissatisfied-upper"),
        pytest.param("Very dissatisfied.", G.VERY_DISSATISFIED, id="en-very-dissatisfied"),
        pytest.param("这次办事非常满意，谢谢！", G.VERY_SATISFIED, id="zh-word-in-sentence"),
        pytest.param("我觉得非常不满意!!", G.VERY_DISSATISFIED, id="zh-longest-in-sentence"),
        pytest.param("I am very satisfied, thanks", G.VERY_SATISFIED, id="en-word-in-sentence"),
        pytest.param("我选4", G.DISSATISFIED, id="digit-after-text"),
        pytest.param("3，谢谢", G.BASICALLY_SATISFIED, id="digit-then-fullwidth-comma"),
        pytest.param("我 选 2 号", G.SATISFIED, id="digit-in-sentence"),
        pytest.param("1 非常满意", G.VERY_SATISFIED, id="digit-and-word-agree"),
        pytest.param("2026年11月办的，满意", G.SATISFIED, id="year-and-month-are-not-grades"),
        pytest.param("详见 https://hcp.example.cn/r/4 我选2", G.SATISFIED, id="url-digit-ignored"),
        pytest.param("4\ufe0f\u20e3", G.DISSATISFIED, id="keycap-emoji"),
    ],
)
def test_parse_grade_examples(text: str, expected: Grade) -> None:
    assert parse_grade(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blanks"),
        pytest.param("好的", id="no-grade"),
        pytest.param("0", id="zero"),
        pytest.param("6", id="six"),
        pytest.param("9", id="nine"),
        pytest.param("12", id="two-digit-number"),
        pytest.param("2026年", id="year"),
        pytest.param("44", id="repeated-digit-run"),
        pytest.param("１２", id="fullwidth-two-digit-number"),
        pytest.param("https://hcp.example.cn/r/4", id="digit-inside-url"),
        pytest.param("HTTP://x.cn/?g=1", id="digit-inside-upper-url"),
        pytest.param("1 2", id="two-digits"),
        pytest.param("1或者5", id="two-digits-in-words"),
        pytest.param("满意 4", id="word-and-digit-disagree"),
        pytest.param("非常满意 不满意", id="two-words"),
        pytest.param("satisfied and dissatisfied", id="two-english-words"),
        pytest.param("4.5", id="decimal-two-grades"),
        pytest.param("dissatisfiedly", id="english-word-inside-longer-word"),
        pytest.param("\x00\x1b[31m", id="control-chars"),
        # A number of points or stars is a score on another scale, where 5 is the best: the menu's 2 is
        # 满意 but 打2分 may mean 2 out of 5, a bad review.
        pytest.param("打 2 分", id="points-are-a-score-not-the-menu"),
        pytest.param("5星", id="stars-are-a-score"),
    ],
)
def test_parse_grade_unreadable_or_ambiguous(text: str) -> None:
    assert parse_grade(text) is None


@pytest.mark.parametrize(
    "text", [pytest.param("satısfıed", id="dotless-i"), pytest.param("SATİSFİED", id="dotted-capital-I")]
)
def test_parse_grade_is_total_for_turkish_i(text: str) -> None:
    assert parse_grade(text) in (None, *Grade)


# --- parse_grade: properties -------------------------------------------------------------------------

# Filler around a digit: what people write beside a menu choice, or any run of blanks, punctuation,
# symbols and emoji (no letter: blanks do not separate words, so "不 满意" is 不满意). A question
# mark makes a question, and a unit after the digit makes it a score or a quantity (5分, 3小时).
_FILLER_WORDS = st.sampled_from(["", " ", "我选", "，谢谢！", "选", "第", "号", "回复", "ok ", "\n", "：", "\u3000",
                                 "吧"])
_FILLER_MARKS = st.text(alphabet=st.characters(exclude_categories=("L", "N", "M", "Cs"), exclude_characters="?？"))
_FILLER = st.one_of(_FILLER_WORDS, _FILLER_MARKS)


@given(st.text())
@example("")
@example("\x00")
@example("\u0300\u0301")
@example("\ud7ff\U0010ffff")
@example(HUGE[0])
@example(HUGE[1])
@example(HUGE[2])
@example(HUGE[3])
@example(HUGE[4])
def test_parse_grade_is_total(text: str) -> None:
    result = parse_grade(text)
    assert result is None or isinstance(result, Grade)


@given(st.sampled_from(sorted(PROMPT_DIGITS)), _FILLER, _FILLER, st.booleans())
def test_one_standalone_prompt_digit_is_that_grade(digit: str, prefix: str, suffix: str, fullwidth: bool) -> None:
    written = chr(ord("０") + int(digit)) if fullwidth else digit
    text = prefix + written + suffix
    folded = normalize(text)
    assume(sum(c.isdigit() for c in folded) == 1)  # no other digit, even one NFKC makes out of a symbol
    assume("://" not in folded and "?" not in folded)  # not inside a link; no question mark NFKC makes
    assume(not re.search(r"[0-9]\s*/", folded))  # "4/" reads as the start of "4/5", a score
    assert parse_grade(text) is PROMPT_DIGITS[digit]


_DIGITS = st.sampled_from(sorted(PROMPT_DIGITS))


@given(_DIGITS, _DIGITS, st.sampled_from([" ", "，", "和"]))
def test_two_different_digits_are_ambiguous(a: str, b: str, sep: str) -> None:
    text = a + sep + b
    assert parse_grade(text) is (PROMPT_DIGITS[a] if a == b else None)


@given(st.integers(min_value=10, max_value=10**12), st.text(alphabet="年月日号 "))
def test_longer_numbers_are_never_grades(number: int, tail: str) -> None:
    assert parse_grade(f"{number}{tail}") is None


# --- parse_reasons: examples -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("1", (1,), id="one"),
        pytest.param("8", (8,), id="last"),
        pytest.param("1 3", (1, 3), id="space"),
        pytest.param("1,3", (1, 3), id="comma"),
        pytest.param("1，3", (1, 3), id="fullwidth-comma"),
        pytest.param("１、３", (1, 3), id="fullwidth-digits-enumeration-comma"),
        pytest.param("13", (1, 3), id="run-together"),
        pytest.param("1和3", (1, 3), id="he"),
        pytest.param("1；3", (1, 3), id="fullwidth-semicolon"),
        pytest.param("1 and 3", (1, 3), id="english-and"),
        pytest.param(" 2 ,  5 \n", (2, 5), id="blanks-around"),
        pytest.param("3 1", (3, 1), id="order-kept"),
        pytest.param("3 1 3", (3, 1), id="duplicate-collapses"),
        pytest.param("11", (1,), id="run-together-duplicate"),
        pytest.param("1357", (1, 3, 5, 7), id="long-run"),
        pytest.param("其他", (8,), id="label-other"),
        pytest.param("服务态度差", (1,), id="label-attitude"),
        pytest.param("服务态度差、其他", (1, 8), id="two-labels"),
        pytest.param("2，其他", (2, 8), id="number-and-label"),
        pytest.param("8 其他", (8,), id="a-line-of-the-list-copied"),
        pytest.param("8.其他", (8,), id="a-line-of-the-list-copied-with-its-full-stop"),
        pytest.param("其他 8", (8,), id="label-and-its-number"),
    ],
)
def test_parse_reasons_examples(text: str, expected: tuple[int, ...]) -> None:
    assert parse_reasons(text, LABELS) == expected


@pytest.mark.parametrize("number, label", list(enumerate(LABELS, start=1)), ids=[f"label-{i}" for i in range(1, 9)])
def test_every_default_label_written_out_is_its_reason(number: int, label: str) -> None:
    assert parse_reasons(label, LABELS) == (number,)
    assert parse_reasons(f" {label}！", LABELS) == (number,)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blanks"),
        pytest.param(",，、", id="separators-only"),
        pytest.param("0", id="zero"),
        pytest.param("9", id="above-n"),
        pytest.param("10", id="run-with-zero"),
        pytest.param("1 9", id="one-out-of-range"),
        pytest.param("19", id="run-with-out-of-range"),
        pytest.param("1 x", id="unknown-token"),
        pytest.param("1 服务", id="partial-label"),
        pytest.param("态度不好", id="free-text"),
        pytest.param("1-3", id="range-not-supported"),
        # A number written just before another reason's label: 2 and 其他, or a wrong number for 其他?
        pytest.param("2 其他", id="number-and-another-reasons-label"),
        pytest.param("1、3？", id="a-question"),
        pytest.param("-1", id="negative"),
        pytest.param("٣", id="arabic-indic-digit"),
    ],
)
def test_parse_reasons_invalid(text: str) -> None:
    assert parse_reasons(text, LABELS) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("13", (13,), id="thirteen-is-one-reason"),
        pytest.param("10", (10,), id="ten"),
        pytest.param("15", (15,), id="fifteen"),
        pytest.param("1 3", (1, 3), id="space"),
        pytest.param("10，1", (10, 1), id="ten-and-one"),
        pytest.param("１０、１２", (10, 12), id="fullwidth"),
        pytest.param(LABELS_15[10], (11,), id="label"),
        pytest.param("16 1", None, id="sixteen-out-of-range"),
        pytest.param("0", None, id="zero"),
        pytest.param("010", (10,), id="leading-zero"),
        pytest.param("123", None, id="no-run-together"),
    ],
)
def test_parse_reasons_with_ten_or_more_labels(text: str, expected: tuple[int, ...] | None) -> None:
    assert parse_reasons(text, LABELS_15) == expected


@pytest.mark.parametrize(
    "label", [pytest.param("态度与作风差", id="yu"), pytest.param("收费不合理/乱收费", id="slash")]
)
def test_parse_reasons_label_containing_a_separator(label: str) -> None:
    labels = ("服务态度差", label, "其他")
    assert parse_reasons(label, labels) == (2,)


def test_parse_reasons_without_labels_is_none() -> None:
    assert parse_reasons("1", ()) is None


def test_parse_reasons_is_total_for_huge_digit_runs_with_ten_or_more_labels() -> None:
    assert parse_reasons("1" * 5000, LABELS_15) is None


# --- parse_reasons: properties -----------------------------------------------------------------------


@given(st.text())
@example(HUGE[0])
@example(HUGE[1])
@example(HUGE[2])
@example(HUGE[3])
@example("12345678" * 10_000)
def test_parse_reasons_is_total_and_in_range(text: str) -> None:
    result = parse_reasons(text, LABELS)
    assert result is None or isinstance(result, tuple)
    if result is not None:
        assert result  # never an empty tuple
        assert all(isinstance(n, int) and 1 <= n <= len(LABELS) for n in result)
        assert len(set(result)) == len(result)


@given(st.text())
def test_parse_reasons_with_ten_or_more_labels_is_total_and_in_range(text: str) -> None:
    result = parse_reasons(text, LABELS_15)
    assert result is None or isinstance(result, tuple)
    if result is not None:
        assert result
        assert all(1 <= n <= len(LABELS_15) for n in result)
        assert len(set(result)) == len(result)


_SEPARATORS = st.sampled_from([" ", ",", "，", "、", "和", ", ", " and ", "；", "/", "  \n"])


def _dedup(numbers: list[int]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(numbers))


@given(st.data(), st.lists(st.integers(1, len(LABELS)), min_size=1, max_size=12))
def test_written_reasons_are_read_back(data: st.DataObject, numbers: list[int]) -> None:
    parts = []
    for n in numbers:
        form = data.draw(st.sampled_from(["ascii", "fullwidth", "label"]))
        parts.append(str(n) if form == "ascii" else chr(ord("０") + n) if form == "fullwidth" else LABELS[n - 1])
    text = parts[0]
    for before, part in itertools.pairwise(parts):
        # A blank alone between a number and a label reads as one line of the list ("3 办事流程繁琐").
        sep = data.draw(_SEPARATORS.filter(lambda s: s.strip()) if before.isdigit() or before in "０１２３４５６７８９"
                        else _SEPARATORS)
        text += sep + part
    assert parse_reasons(text, LABELS) == _dedup(numbers)


@given(st.lists(st.integers(1, len(LABELS)), min_size=1, max_size=12))
def test_run_together_digits_are_single_reasons_when_n_is_at_most_nine(numbers: list[int]) -> None:
    assert parse_reasons("".join(map(str, numbers)), LABELS) == _dedup(numbers)


@given(st.data(), st.lists(st.integers(1, len(LABELS_15)), min_size=1, max_size=12))
def test_separated_numbers_with_ten_or_more_labels(data: st.DataObject, numbers: list[int]) -> None:
    text = str(numbers[0])
    for n in numbers[1:]:
        text += data.draw(_SEPARATORS) + str(n)
    assert parse_reasons(text, LABELS_15) == _dedup(numbers)


# --- opt-out -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("退订", id="tuiding"),
        pytest.param("TD", id="TD"),
        pytest.param("td", id="td"),
        pytest.param("Td", id="Td"),
        pytest.param("STOP", id="STOP"),
        pytest.param("stop", id="stop"),
        pytest.param("Stop", id="Stop"),
        pytest.param("取消", id="quxiao"),
        pytest.param("ＴＤ", id="fullwidth-TD"),
        pytest.param("ｓｔｏｐ", id="fullwidth-stop"),
        pytest.param("  退订 \n", id="blanks"),
        pytest.param("\u3000退订\u3000", id="ideographic-space"),
        pytest.param("退订。", id="ideographic-full-stop"),
        pytest.param("STOP!", id="exclamation"),
        pytest.param("取消！", id="fullwidth-exclamation"),
        pytest.param("td.", id="full-stop"),
        pytest.param("\tTD\r\n", id="tab-crlf"),
    ],
)
def test_opt_out_words(text: str) -> None:
    assert is_opt_out(text) is True


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("退订？", id="fullwidth-question-mark"),
        pytest.param("TD,", id="comma"),
        pytest.param("退订，", id="fullwidth-comma"),
        pytest.param("STOP?", id="question-mark"),
        pytest.param("【退订】", id="brackets"),
        pytest.param("（取消）", id="fullwidth-parentheses"),
    ],
)
def test_opt_out_words_with_other_punctuation(text: str) -> None:
    assert is_opt_out(text) is True


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("stop it", id="stop-it"),
        pytest.param("please stop", id="please-stop"),
        pytest.param("不要退订", id="in-sentence"),
        pytest.param("退订了吗", id="question"),
        pytest.param("T D", id="spaced-letters"),
        pytest.param("tdd", id="longer-word"),
        pytest.param("1", id="digit"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blanks"),
        pytest.param("满意", id="grade-word"),
    ],
)
def test_not_opt_out(text: str) -> None:
    assert is_opt_out(text) is False


@given(st.sampled_from(["退订", "TD", "STOP", "取消"]), st.data())
def test_opt_out_any_case_and_width(word: str, data: st.DataObject) -> None:
    chars = []
    for c in word:
        if c.isascii():
            c = data.draw(st.sampled_from([c.lower(), c.upper()]))
            if data.draw(st.booleans()):
                c = chr(ord(c) - 0x21 + 0xFF01)  # its full-width form
        chars.append(c)
    pad = st.text(alphabet=" \t\n\u3000.。!！", max_size=4)
    text = data.draw(pad) + "".join(chars) + data.draw(pad)
    assert is_opt_out(text) is True


# --- normalize, has_words, clean_text ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("１２３", "123", id="fullwidth-digits"),
        pytest.param("ＴＤ", "TD", id="fullwidth-letters"),
        pytest.param("1，3", "1,3", id="fullwidth-comma"),
        pytest.param("  a  ", "a", id="stripped"),
        pytest.param("", "", id="empty"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_normalize_none_is_empty() -> None:
    assert normalize(None) == ""  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("窗口人员态度不好", True, id="chinese"),
        pytest.param("too slow", True, id="latin"),
        pytest.param("等了3小时", True, id="chinese-with-digit"),
        pytest.param("ｏｋ", True, id="fullwidth-latin"),
        pytest.param("123", False, id="digits"),
        pytest.param("1 3", False, id="digits-and-blank"),
        pytest.param("。。。!!", False, id="punctuation"),
        pytest.param("１２", False, id="fullwidth-digits"),
        pytest.param("___", False, id="underscores"),
        pytest.param("", False, id="empty"),
        pytest.param("👍", False, id="emoji"),
    ],
)
def test_has_words(text: str, expected: bool) -> None:
    assert has_words(text) is expected


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("  窗口人员不在岗 \n", "窗口人员不在岗", id="trimmed"),
        pytest.param("ＴＤ 是什么", "ＴＤ 是什么", id="kept-as-written"),
        pytest.param("", "", id="empty"),
        pytest.param("字" * (MAX_TEXT + 50), "字" * MAX_TEXT, id="bounded"),
    ],
)
def test_clean_text(text: str, expected: str) -> None:
    assert clean_text(text) == expected


@given(st.text())
@example(HUGE[1])
@example(HUGE[2])
def test_small_helpers_are_total(text: str) -> None:
    assert isinstance(is_opt_out(text), bool)
    assert isinstance(has_words(text), bool)
    folded = normalize(text)
    assert isinstance(folded, str)
    assert folded == unicodedata.normalize("NFKC", text).strip()
    cleaned = clean_text(text)
    assert isinstance(cleaned, str)
    assert len(cleaned) <= MAX_TEXT
    assert cleaned == text.strip()[:MAX_TEXT]


@pytest.mark.parametrize(("reply", "grade"), [
    ("一¯", Grade.VERY_SATISFIED),  # found by hypothesis: NFKC makes ¯ a blank and a combining macron
    ("¯一", Grade.VERY_SATISFIED),
    ("满意´", Grade.SATISFIED),
    ("不满意 ¨ ", Grade.DISSATISFIED),
])
def test_a_spacing_accent_typed_as_decoration_changes_nothing(reply: str, grade: Grade) -> None:
    assert parse_grade(reply) == grade
