"""Reading what people type: grades, reason numbers, opt-out words.

People answer an SMS menu in every way a phone keyboard allows: full-width digits from a Chinese
input method, the grade written out in words, a digit inside a sentence, several reasons run
together. Every function here is total: any string in, a value or None out, never an exception.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from dialogs import grammar
from dialogs.grades import PROMPT_DIGITS, Grade

OPT_OUT_WORDS = frozenset({"退订", "td", "stop", "取消", "退訂", "unsubscribe"})
LIST_WORDS = frozenset({"评价", "評價", "rate", "待评价", "待評價"})
HELP_WORDS = frozenset({"帮助", "幫助", "help", "求助"})

_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]+(?![0-9])")
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_REASON_SEPARATORS = re.compile(r"(?:[\s,，、;；/|。.!！&+和与及跟同加]|以及|还有|\band\b)+", re.IGNORECASE)
# 第一个, 第3项, 三: an ordinal or a numeral standing for a reason's number.
_ORDINAL = re.compile(r"(第)?([0-9]+|[一二三四五六七八九十]+)(个|项|条|点|号)?(?![0-9])")
# What people write around the numbers: 您好，我选 1和3, 原因：2, 1、3吧, 这两个, 都有, an emoji.
_REASON_LEAD = re.compile(r"^(?:\s|[,，:：]|您好|你好|我觉得|我认为|我|就是|选择?的?|是|原因|理由|主要|"
                          r"第(?=[^第]+[、,，和跟与及 ][^第]+[项个条]$))+")
_REASON_TAIL = re.compile(r"(?:\s|[吧啊呀哈了的]|这几?[两几三]?[个项条]|都有|都是|(?<=[0-9])[项个条]|"
                          r"谢谢|感谢|辛苦了|thanks|[^\w\s,，、;；/|。.!！&+])+$")
_EXPLANATION_CUT = re.compile(r"\s*[,，。.!！;；:：\n]\s*")
_LETTERS = re.compile(r"[^\W\d_]")

MAX_TEXT = 1000
# Control characters other than tab, CR and LF (C0, DEL, C1): never part of what a person wrote.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """A message from a provider without its control characters: removed, never refused (CONTRACT)."""
    return CONTROL.sub("", text)


def normalize(text: str) -> str:
    """NFKC folds full-width digits, letters and punctuation (１ → 1, ， → ,) and compatibility forms."""
    return unicodedata.normalize("NFKC", text or "").strip()


def _is_filler(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch)[0] in "PSZC"


def is_opt_out(text: str) -> bool:
    """An opt-out word alone in the message (any case; blanks, punctuation and symbols around it ignored)."""
    word = normalize(text)
    start, end = 0, len(word)
    while start < end and _is_filler(word[start]):
        start += 1
    while end > start and _is_filler(word[end - 1]):
        end -= 1
    return word[start:end].lower() in OPT_OUT_WORDS


def is_list_request(text: str) -> bool:
    """The keyword 评价 alone: the person asks which of their cases wait for a rating."""
    word = normalize(text)
    return word.strip("".join(c for c in word if _is_filler(c))).lower() in LIST_WORDS


def is_help(text: str) -> bool:
    """帮助 or HELP alone: the person asks what the service is and what to reply."""
    word = normalize(text)
    return word.strip("".join(c for c in word if _is_filler(c))).lower() in HELP_WORDS


def has_words(text: str) -> bool:
    """Whether a message says something in letters (CJK or Latin), not only digits and punctuation."""
    return _LETTERS.search(normalize(text)) is not None


def parse_grade(text: str) -> Grade | None:
    """The one grade a reply names, by a prompt digit (1 = 非常满意 … 5 = 非常不满意) or in words.

    Read through the grammar in grammar.py: a digit must agree with every phrase and judgement
    beside it, and without a digit exactly one grade must be named, fitting everything else said.
    A question, a score on another scale (5分), two grades or an uncertain phrase (不是非常满意,
    说不上满意, 没什么不满意) give None: the person is asked again.
    """
    alone = (text or "").strip()
    if len(alone) == 1 and alone in PROMPT_DIGITS:  # the common answer, read without the grammar
        return PROMPT_DIGITS[alone]
    name = _decide(grammar.read(text), _GRADE_DIGITS, _GRADE_CLASSES, strict_digits=False)
    return Grade(name) if name is not None else None


_GRADE_CLASSES: dict[str, frozenset[Grade]] = {g.value: frozenset({g}) for g in Grade}
_GRADE_DIGITS: dict[str, str] = {d: g.value for d, g in PROMPT_DIGITS.items()}


def _decide(reading: grammar.Reading, digits: dict[str, str], classes: dict[str, frozenset[Grade]], *,
            strict_digits: bool) -> str | None:
    """The one class (a grade, or a callback result) that a reply names and everything in it fits, or None.

    `digits` maps the digits the question offered to their class; with `strict_digits`, any other lone
    digit spoils the reply (the question did not offer it). Digits decide when there are any: the words
    beside them only have to agree. Without digits, the phrases that name a grade must all name one.
    """
    if reading.question or any(e.score for e in reading.evidence):
        return None
    words = [e for e in reading.evidence if e.digit is None]
    chosen: set[str] = set()
    for e in reading.evidence:
        if e.digit is None:
            continue
        if e.digit in digits:
            chosen.add(digits[e.digit])
        elif strict_digits:
            return None
    if not chosen:
        chosen = {name for e in words if e.reading is not None
                  for name, grades in classes.items() if e.reading in grades}
    if len(chosen) != 1:
        return None
    name = chosen.pop()
    return name if all(e.fits & classes[name] for e in words) else None


def parse_reasons(text: str, labels: Sequence[str]) -> tuple[int, ...] | None:
    """The reason numbers (1-based, in the order given, without repeats) a reply names, or None.

    Numbers may be separated by blanks, commas (ASCII or full-width), 、, 和/跟/与/以及/还有 and the
    like, or run together ("13") when every reason number has one digit; Chinese numerals count
    (第一个跟第三个). A reason's label written out counts too (labels are read before the text is
    split, so a label may itself hold a separator). What people put around the numbers (我选 …,
    原因是 …, … 吧) is dropped. Any other token makes the whole reply invalid: better to ask again
    than to guess.
    """
    count = len(labels)
    t = normalize(text)
    if not t or len(t) > MAX_TEXT:
        return None
    if "?" in t:
        return None  # a question back: which reasons it names is not settled
    t = grammar.simplified(t).replace("其它", "其他")
    numbered = {grammar.simplified(normalize(label)).lower(): i + 1
                for i, label in enumerate(labels) if normalize(label)}
    if numbered:
        # One pass, longest label first, so that a number put in for one label never pairs with the next.
        # "3.办事流程繁琐" copies a line of the list: one reason, when the number is the label's own.
        pattern = re.compile(r"(?:(?<![0-9])([0-9]+)\s*[.:：]?\s*)?(" + "|".join(
            re.escape(label) for label in sorted(numbered, key=len, reverse=True)) + ")", re.IGNORECASE | re.ASCII)

        def label_number(m: re.Match[str]) -> str:
            number = numbered[m.group(2).lower()]
            written = m.group(1)
            return f" {number} " if written is None or written.lstrip("0") == str(number) else " x "

        t = pattern.sub(label_number, t)
    t = _REASON_TAIL.sub("", _REASON_LEAD.sub("", t))
    t = _ORDINAL.sub(lambda m: _ordinal(m, count), t)
    widest = len(str(count))
    chosen: list[int] = []
    for token in _REASON_SEPARATORS.split(t):
        if not token:
            continue
        if not (token.isdigit() and token.isascii()):
            return None
        if count <= 9:
            numbers = [int(c) for c in token]
        elif len(token.lstrip("0")) <= widest:
            numbers = [int(token.lstrip("0") or "0")]
        else:
            return None
        for n in numbers:
            if not 1 <= n <= count:
                return None
            if n not in chosen:
                chosen.append(n)
    return tuple(chosen) or None


def read_reasons(text: str, labels: Sequence[str]) -> tuple[tuple[int, ...], str | None] | None:
    """Reason numbers, and the explanation a person writes after them ("1，窗口态度太差了"), or None.

    The whole reply is tried as reasons first; otherwise the part before the first comma, full stop or
    line break must be reasons and the rest must say something in words.
    """
    numbers = parse_reasons(text, labels)
    if numbers is not None:
        return numbers, None
    t = (text or "").strip()
    cut = _EXPLANATION_CUT.search(t)
    if cut is None or cut.start() == 0:
        return None
    numbers = parse_reasons(t[:cut.start()], labels)
    rest = clean_text(t[cut.end():])
    # The rest must explain, not name reasons of its own ("3 多次跑动": reason 3, or 5?).
    if numbers is None or not has_words(rest) or _names_a_reason(rest, labels):
        return None
    return numbers, rest


def _names_a_reason(text: str, labels: Sequence[str]) -> bool:
    t = grammar.simplified(normalize(text)).lower()
    return parse_reasons(text, labels) is not None or any(
        grammar.simplified(normalize(label)).lower() in t for label in labels if normalize(label))


def _ordinal(m: re.Match[str], count: int) -> str:
    """An ordinal or numeral as the number it names. A bare run of digits is left as written (13 is 1 and 3
    while every reason has one digit), but 第13项 or 十三 name one number, which must exist."""
    first, word, unit = m.groups()
    if unit in ("个", "项", "条", "点") and not first:
        return " x "  # 三个 is a count (three of them), not the third reason
    if word.isdigit() and m.group(0) == word:
        return word
    number = _numeral(word)
    if "十" not in word and not first and not unit and number.isdigit():
        return number  # 一三 is 1 and 3, as 13 is
    if not number.isdigit() or (count <= 9 and len(number) > 1):
        return " x "
    return f" {number} "


def _numeral(word: str) -> str:
    """一 … 九十九 as digits (a reason list is short); anything else is left to fail as a token."""
    if word.isdigit():
        return str(int(word))
    digits = {c: i for i, c in enumerate("零一二三四五六七八九")}
    if len(word) == 1 and word in digits:
        return str(digits[word])
    tens, _, units = word.partition("十")
    if "十" in word and (not tens or tens in digits) and (not units or units in digits):
        return str((digits[tens] if tens else 1) * 10 + (digits[units] if units else 0))
    return "".join(str(digits[c]) for c in word) if all(c in digits for c in word) else word


def clean_text(text: str) -> str:
    """A person's own words, kept as written but trimmed and bounded."""
    return (text or "").strip()[:MAX_TEXT]


# The callback question's digits, as its text states them (1 满意, 2 基本满意, 3 不满意), and the grades
# each result stands for when a person answers in words.
CALLBACK_DIGITS = {"1": "satisfied", "2": "basically_satisfied", "3": "dissatisfied"}
_CALLBACK_CLASSES: dict[str, frozenset[Grade]] = {
    "satisfied": frozenset({Grade.VERY_SATISFIED, Grade.SATISFIED}),
    "basically_satisfied": frozenset({Grade.BASICALLY_SATISFIED}),
    "dissatisfied": frozenset({Grade.DISSATISFIED, Grade.VERY_DISSATISFIED}),
}


def parse_callback_result(text: str) -> str | None:
    """A reply to the callback question: its one digit, or a satisfaction named in words; else None.
    Read by the same grammar as grades; a digit the question did not offer spoils the reply."""
    return _decide(grammar.read(text), CALLBACK_DIGITS, _CALLBACK_CLASSES, strict_digits=True)
