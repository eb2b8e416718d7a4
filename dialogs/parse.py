"""Reading what people type: grades, reason numbers, opt-out words.

People answer an SMS menu in every way a phone keyboard allows: full-width digits from a Chinese
input method, the grade written out in words, a digit inside a sentence, several reasons run
together. Every function here is total: any string in, a value or None out, never an exception.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from dialogs.grades import PROMPT_DIGITS, Grade

OPT_OUT_WORDS = frozenset({"退订", "td", "stop", "取消", "退訂", "unsubscribe"})
LIST_WORDS = frozenset({"评价", "評價", "rate", "待评价", "待評價"})

# Longest first: "非常不满意" must win over "不满意" and "满意" at the same place.
_GRADE_WORDS: tuple[tuple[str, Grade], ...] = (
    ("非常不满意", Grade.VERY_DISSATISFIED),
    ("非常不滿意", Grade.VERY_DISSATISFIED),
    ("very dissatisfied", Grade.VERY_DISSATISFIED),
    ("basically satisfied", Grade.BASICALLY_SATISFIED),
    ("very satisfied", Grade.VERY_SATISFIED),
    ("不是很满意", Grade.DISSATISFIED),
    ("不是很滿意", Grade.DISSATISFIED),
    ("非常满意", Grade.VERY_SATISFIED),
    ("非常滿意", Grade.VERY_SATISFIED),
    ("基本满意", Grade.BASICALLY_SATISFIED),
    ("基本滿意", Grade.BASICALLY_SATISFIED),
    ("不太满意", Grade.DISSATISFIED),
    ("不太滿意", Grade.DISSATISFIED),
    ("dissatisfied", Grade.DISSATISFIED),
    ("unsatisfied", Grade.DISSATISFIED),
    ("不满意", Grade.DISSATISFIED),
    ("不滿意", Grade.DISSATISFIED),
    ("satisfied", Grade.SATISFIED),
    ("满意", Grade.SATISFIED),
    ("滿意", Grade.SATISFIED),
)
_WORDS_RE = re.compile(
    "|".join(
        (rf"\b{re.escape(w)}\b" if w.isascii() else re.escape(w))
        for w, _ in sorted(_GRADE_WORDS, key=lambda p: -len(p[0]))
    ),
    # ASCII: case-insensitivity must not let "ı" or "İ" match an ASCII "i" (then the lookup below misses).
    re.IGNORECASE | re.ASCII,
)
_WORD_GRADE = {w.lower(): g for w, g in _GRADE_WORDS}
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

    Digits inside longer numbers (a date, a case number) and inside links are not grades. A reply
    naming two different grades is ambiguous and yields None, so the person is asked again.
    """
    t = _URL.sub(" ", normalize(text))
    found: set[Grade] = set()
    for m in _WORDS_RE.finditer(t):
        found.add(_WORD_GRADE[m.group(0).lower()])
    for m in _DIGIT_RUN.finditer(t):
        run = m.group(0)
        if len(run) == 1 and run in PROMPT_DIGITS:
            found.add(PROMPT_DIGITS[run])
    return found.pop() if len(found) == 1 else None


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


# The callback question's digits, as its text states them (1 满意, 2 基本满意, 3 不满意).
CALLBACK_DIGITS = {"1": "satisfied", "2": "basically_satisfied", "3": "dissatisfied"}
_CALLBACK_OF_GRADE = {Grade.VERY_SATISFIED: "satisfied", Grade.SATISFIED: "satisfied",
                      Grade.BASICALLY_SATISFIED: "basically_satisfied", Grade.DISSATISFIED: "dissatisfied",
                      Grade.VERY_DISSATISFIED: "dissatisfied"}


def parse_callback_result(text: str) -> str | None:
    """A reply to the callback question: its one digit, or a satisfaction named in words; else None."""
    t = _URL.sub(" ", normalize(text))
    found: set[str] = set()
    for m in _DIGIT_RUN.finditer(t):
        run = m.group(0)
        if len(run) == 1 and run in CALLBACK_DIGITS:
            found.add(CALLBACK_DIGITS[run])
        elif len(run) == 1:
            return None  # a digit the question did not offer
    for m in _WORDS_RE.finditer(t):
        found.add(_CALLBACK_OF_GRADE[_WORD_GRADE[m.group(0).lower()]])
    return found.pop() if len(found) == 1 else None
