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

_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]+(?![0-9])")
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_REASON_SEPARATORS = re.compile(r"[\s,，、;；/|。.!！和与及]+|\band\b", re.IGNORECASE)
_LETTERS = re.compile(r"[^\W\d_]")

MAX_TEXT = 1000


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

    Numbers may be separated by blanks, commas (ASCII or full-width), 、 or 和, or run together
    ("13") when every reason number has one digit. A reason's label written out counts too (labels
    are read before the text is split, so a label may itself hold a separator). Any token that is
    neither makes the whole reply invalid: better to ask again than to guess.
    """
    count = len(labels)
    t = normalize(text)
    if not t:
        return None
    by_length = sorted(((normalize(label), i + 1) for i, label in enumerate(labels) if normalize(label)),
                       key=lambda p: -len(p[0]))
    for label, number in by_length:
        t = re.sub(re.escape(label), f" {number} ", t, flags=re.IGNORECASE | re.ASCII)
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
