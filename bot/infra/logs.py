"""Logging that cannot leak a phone number (ARCHITECTURE invariant 5).

Every formatted line, exception tracebacks included, passes through a mask before it is written,
so a number that slips into a message by accident (an exception's repr, an access-log query) is
still cut to 138****1234.
"""

from __future__ import annotations

import logging
import sys

from bot.infra.limits import escaped

# The one mask of what leaves the service (bot/infra/privacy.py); `bot.infra.logs.mask_numbers` stays importable.
from bot.infra.privacy import mask_numbers

__all__ = ["MaskingFormatter", "mask_numbers", "setup_logging"]


class MaskingFormatter(logging.Formatter):
    """Masks numbers; writes control, line-separator and bidi characters of a record's line (its message
    with its arguments, whatever a client put in them: a URL's %0a, a header, a user name) as visible
    escapes, so that one record is one line. A traceback keeps its own lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escaped(super().formatMessage(record))

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
    logging.getLogger("tencentcloud_sdk_common").setLevel(logging.WARNING)  # so does Tencent's SDK, at DEBUG
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("wechatpy").setLevel(logging.WARNING)  # its request URLs carry the access token
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING if level != "DEBUG" else logging.DEBUG)
