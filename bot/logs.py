"""Logging that cannot leak a phone number (ARCHITECTURE invariant 5).

Every formatted line, exception tracebacks included, passes through a mask before it is written,
so a number that slips into a message by accident (an exception's repr, an access-log query) is
still cut to 138****1234.
"""

from __future__ import annotations

import logging
import re
import sys

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


class MaskingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask_numbers(super().format(record))


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("twilio").setLevel(logging.WARNING)  # it logs request bodies, numbers included
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("wechatpy").setLevel(logging.WARNING)  # its request URLs carry the access token
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)
