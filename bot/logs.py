"""Logging that cannot leak a phone number (ARCHITECTURE invariant 5).

Every formatted line, exception tracebacks included, passes through a mask before it is written,
so a number that slips into a message by accident (an exception's repr, an access-log query) is
still cut to 138****1234.
"""

from __future__ import annotations

import logging
import re
import sys

# A Chinese mobile, possibly with +86/0086 and blanks or dashes inside; any other long digit run
# after a "+" (an international number).
_CN = re.compile(r"(?<![0-9])(?:(?:\+|00)86[\s\-]?)?(1[3-9][0-9])[\s\-]?([0-9]{4})[\s\-]?([0-9]{4})(?![0-9])")
_INTL = re.compile(r"\+[0-9]{4,}([0-9]{4})(?![0-9])")
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
