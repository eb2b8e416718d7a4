"""What leaves the service about a person (ARCHITECTURE invariant 5): one mask for every way out.

Log lines, reports pushed upward, API answers, work orders, console pages, exports and the CLI all cut
a phone number or an openid with `mask_numbers`, wherever it is written: in a field of its own or in
the words a citizen, a clerk or an agent typed ("请打我电话13900139001" leaves as 139****9001). The
store keeps what was written; only what leaves is masked, except where the reveal rule hands a number
out whole (the console at the callback step, an export to an admin or to an agent of that queue).
"""

from __future__ import annotations

import re
from typing import Any

# A Chinese mobile, possibly with +86/0086/86 and blanks or dashes inside; any other long digit run
# after a "+" (an international number). Digits are ASCII or full-width: a Chinese input method in
# full-width mode writes １３８１２３４５６７８, and a rater's free text is reported upward.
_D = "[0-9０-９]"
_CN = re.compile(rf"(?<!{_D})(?:(?:[+＋]|[0０]{{2}})?[8８][6６][\s\-]?)?([1１][3-9３-９]{_D})[\s\-]?({_D}{{4}})[\s\-]?"
                 rf"({_D}{{4}})(?!{_D})")
_INTL = re.compile(rf"[+＋]{_D}{{4,}}({_D}{{4}})(?!{_D})")
# A WeChat openid: "o" and 27 URL-safe characters (the official account's and the mini-program's).
_OPENID = re.compile(r"(?<![A-Za-z0-9_-])(o[A-Za-z0-9_-]{3})[A-Za-z0-9_-]{20}([A-Za-z0-9_-]{4})(?![A-Za-z0-9_-])")


def mask_numbers(text: str) -> str:
    text = _CN.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    text = _INTL.sub(lambda m: f"+****{m.group(1)}", text)
    return _OPENID.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


def mask_text(text: str | None) -> str | None:
    """A free text as it may leave: None stays None."""
    return None if text is None else mask_numbers(text)


def mask_json(value: Any) -> Any:
    """Every string of a JSON-like value masked (dict keys included), numbers and booleans as they are."""
    if isinstance(value, str):
        return mask_numbers(value)
    if isinstance(value, dict):
        return {mask_json(k) if isinstance(k, str) else k: mask_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_json(v) for v in value]
    return value
