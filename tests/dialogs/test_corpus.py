"""The corpus of real-looking replies (tests/corpus/*.tsv) read by the parsers, and the laws the grade
grammar keeps whatever is written (dialogs/grammar.md).

The same table drives the SMS, WeChat and simulator paths in test_corpus_channels.py.
"""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from replies import ASK, Row, load, params

from dialogs import grammar
from dialogs.grades import DIGIT_OF, Grade
from dialogs.parse import normalize, parse_callback_result, parse_grade, read_reasons

GRADES = load("grades")
REASONS = load("reasons")
LABELS = ("服务态度差", "办事效率低", "办事流程繁琐", "办事指南不清楚", "多次跑动", "平台不好用", "收费不合理", "其他")
BAD = {Grade.DISSATISFIED, Grade.VERY_DISSATISFIED}
CALLBACK_OF = {"very_satisfied": "satisfied", "satisfied": "satisfied", "basically_satisfied": "basically_satisfied",
               "dissatisfied": "dissatisfied", "very_dissatisfied": "dissatisfied"}


def test_the_tables_are_large_and_well_formed() -> None:
    assert len(GRADES) >= 300 and len(REASONS) >= 70
    assert len({r.reply for r in GRADES}) == len(GRADES), "a reply appears twice in grades.tsv"
    assert {r.expected for r in GRADES} <= {*(g.value for g in Grade), ASK}
    assert all(r.why for r in GRADES if r.expected == ASK), "every reply asked again says why"
    groups = {r.group for r in GRADES}
    for phenomenon in ("negation", "degree", "hedge", "colloquial", "traditional", "typo", "full-width", "reasons",
                       "question", "score", "english"):
        assert any(phenomenon in g.lower() for g in groups), f"no group of the corpus is about {phenomenon}"


@pytest.mark.parametrize("row", params(GRADES))
def test_grade(row: Row) -> None:
    got = parse_grade(row.reply)
    assert (got.value if got else ASK) == row.expected, row.why


@pytest.mark.parametrize("row", params(REASONS))
def test_reasons(row: Row) -> None:
    got = read_reasons(row.reply, LABELS)
    assert (" ".join(map(str, got[0])) if got else ASK) == row.expected, row.why


@pytest.mark.parametrize("row", params([r for r in GRADES if r.expected != ASK
                                        and not any(e.digit for e in grammar.read(r.reply).evidence)]))
def test_the_callback_question_reads_the_same_words(row: Row) -> None:
    """Without digits or numerals (the callback's 1-3 are not the menu's 1-5), words mean the same at a
    callback."""
    assert parse_callback_result(row.reply) == CALLBACK_OF[row.expected]


# --- laws -----------------------------------------------------------------------------------------------------

NEGATORS = ("没有", "不是", "并没有", "没什么", "并不是", "也没有", "不能说", "谈不上", "沒有")
BAD_PHRASES = [r.reply for r in GRADES if r.expected in ("dissatisfied", "very_dissatisfied")
               and len(re.findall("满|滿|瞒|慢", r.reply)) == 1 and not re.search(r"[0-9０-９]", r.reply)
               and not re.search(r"[，,。.!！\n]", r.reply.strip("!！。 "))]


@pytest.mark.parametrize("phrase", BAD_PHRASES)
@pytest.mark.parametrize("negator", NEGATORS)
def test_a_negated_bad_grade_is_never_stored_as_bad(negator: str, phrase: str) -> None:
    assert parse_grade(negator + phrase) not in BAD


# Pieces a reply is made of, for the generated laws: the grammar's own words, digits, punctuation, filler.
_PIECES = st.sampled_from([
    *"满意 滿意 满 意 不 没 没有 不是 很 非常 十分 基本 太 了 的 吧 吗 ？ 说不上 一点也不 有点".split(),
    *"还算 可能 如果 就 1 2 3 4 5 １ ５ 分 星 ， 。 ！ 😊 👍 谢谢 办事 窗口 不错 太差 好评 差评".split(),
    *"一 三 五 第 选 得很 极了 心 足 度".split(),
    *"satisfied dis un not very 100% manyi bu".split(), " ", "\n",
])
_REPLIES = st.lists(_PIECES, max_size=8).map("".join)
_HEAD_WORDS = re.compile(r"满|瞒|慢意|漫意|satisfied|manyi")
_NUMERALS = {"1": "一", "2": "二", "3": "三", "4": "四", "5": "五"}


@given(_REPLIES)
@example("不是非常满意")
@example("没什么不满意")
@example("5分")
def test_no_reply_is_stored_as_a_grade_it_does_not_contain(text: str) -> None:
    """A grade is stored only when its menu digit (or numeral) or a satisfaction word is in the reply; a bad
    grade only with 4, 5 or a negation; 非常 only with 1 or a strong word; 基本 only with 3 or 基本."""
    grade = parse_grade(text)
    if grade is None:
        return
    folded = grammar.fold(text)
    digit = DIGIT_OF[grade]
    by_digit = re.search(rf"(?<![0-9]){digit}(?![0-9])", folded) is not None or _NUMERALS[digit] in folded
    assert by_digit or _HEAD_WORDS.search(folded), text
    if not by_digit:
        if grade in BAD:
            assert re.search(r"[不没难无未]|dis|un|not", folded), text
        if grade in (Grade.VERY_SATISFIED, Grade.VERY_DISSATISFIED):
            assert re.search(r"非常|十分|太|极|得很|一点也不|very|totally|100\s*%", folded), text
        if grade is Grade.BASICALLY_SATISFIED:
            assert "基本" in folded or "basically" in folded, text


# A bad phrase as people build one: a degree word, a negation, the grade word (or a typo of it), what follows.
_BAD_PHRASES = st.builds(
    "".join,
    st.tuples(st.sampled_from(["", "很", "非常", "特别", "真的很", "基本", "有点", "我", "对这次服务", "确实"]),
              st.sampled_from(["不", "不太", "不怎么", "不是很", "没", "没有", "并不", "一点也不", "不大", "不够"]),
              st.sampled_from(["满意", "滿意", "瞒意", "满易"]),
              st.sampled_from(["", "了", "啊", "得很", "！", "。", "的"])))
_CONTEXT = st.sampled_from(["", "办事的时候", "这次", "窗口", "说实话"])
_AFTER = st.sampled_from(["", "，等了两个小时", "，谢谢", "。态度一般", "😡", "，材料交了三次"])


@given(_BAD_PHRASES, st.sampled_from(NEGATORS), _CONTEXT, _AFTER)
def test_a_generated_bad_phrase_negated_is_never_stored_as_bad(phrase: str, negator: str, before: str,
                                                                 after: str) -> None:
    """The law again, over phrases built from the grammar's own words rather than the corpus's."""
    assert parse_grade(before + phrase + after) in (*BAD, None)
    assert parse_grade(before + negator + phrase + after) not in BAD, (before, negator, phrase, after)


def _decoration() -> st.SearchStrategy[str]:
    """Punctuation, symbols and emoji that stay themselves under NFKC (a ™ would become the letters TM),
    never a question mark."""
    chars = st.characters(categories=("Po", "Ps", "Pe", "Pi", "Pf", "Pd", "Sm", "So", "Sk", "Zs"),
                          exclude_characters="?？'")
    ok = chars.filter(lambda c: not any(ch.isalnum() or ch in "?'" for ch in unicodedata.normalize("NFKC", c)))
    return st.text(ok, max_size=4) | st.sampled_from(["", "😊", "👍👍", "🙏", "😡", "！！", "～", "。", "【】",
                                                      "🌹🌹🌹"])


@settings(max_examples=300)
@given(st.sampled_from(GRADES), _decoration(), _decoration())
def test_surrounding_punctuation_or_emoji_changes_nothing(row: Row, before: str, after: str) -> None:
    assume(not re.search(r"[0-9]\s*$", normalize(row.reply)) or not after.lstrip().startswith(("/", "%")))
    assert parse_grade(before + row.reply + after) == parse_grade(row.reply), (before, row.reply, after)


_TRADITIONAL = {simple: trad for trad, simple in zip(*grammar.TRADITIONAL_PAIRS, strict=True) if trad != simple}


@pytest.mark.parametrize("row", params(GRADES))
def test_traditional_characters_read_as_simplified(row: Row) -> None:
    written = "".join(_TRADITIONAL.get(c, c) for c in row.reply)
    assert parse_grade(written) == parse_grade(row.reply)


@given(st.sampled_from(GRADES))
def test_full_width_forms_read_as_ascii(row: Row) -> None:
    wide = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" and c not in "\\" else c for c in row.reply)
    assert parse_grade(wide) == parse_grade(row.reply)
