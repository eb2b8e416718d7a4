"""Rendering what the dialogs say, from the Babel catalogs in locales/ (source language zh_Hans).

The catalogs are read from the .po files at start-up (no compiled .mo to keep in step). Dates are
formatted by Babel for the person's locale, in the policy's time zone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, get_date_format, get_datetime_format
from babel.messages.pofile import read_po

from dialogs import messages as m
from dialogs.types import Reply

LOCALES_DIR = Path(__file__).resolve().parents[2] / "locales"  # beside bot/, in a checkout as installed
SOURCE = "zh_Hans"
SUPPORTED = ("zh_Hans", "zh_Hant", "en")
_BABEL = {"zh_Hans": "zh_Hans_CN", "zh_Hant": "zh_Hant_TW", "en": "en"}

log = logging.getLogger("haochaping.i18n")


def read_catalog(path: Path) -> dict[str, str]:
    with open(path, "rb") as f:
        catalog = read_po(f)
    return {str(msg.id): str(msg.string) for msg in catalog if msg.id and msg.string}


@lru_cache(maxsize=1024)
def negotiate(tag: str | None) -> str:
    """An applicant's locale ("zh-CN", "zh_TW", "en-US", …) to one of ours; Chinese first.

    Cached: Babel's parse takes about 50 µs, a fifth of a bulk ingest's Python time per case, and the
    applicants of a province give a handful of distinct tags (the LRU bounds whatever they give)."""
    if not tag:
        return SOURCE
    try:
        loc = Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return SOURCE
    if loc.language == "en":
        return "en"
    if loc.language == "zh" and (loc.script == "Hant" or loc.territory in ("TW", "HK", "MO")):
        return "zh_Hant"
    return SOURCE


def local_day(value: datetime, tz: ZoneInfo, locale: str) -> str:
    """The date of an instant in the policy's zone, as the locale writes it (2026年11月20日)."""
    return _long_date(value.astimezone(tz).date(), locale)


@lru_cache(maxsize=4096)
def _long_date(day: date, locale: str) -> str:
    """Babel takes tens of microseconds per date; a sweep writes the same few days thousands of times."""
    return format_date(day, format="long", locale=_BABEL[locale])


def local_time(value: datetime, tz: ZoneInfo, locale: str, length: str = "medium") -> str:
    """An instant in the policy's zone: the date as the locale writes it, then hours and minutes on the 24-hour
    clock, never seconds (2026年11月28日 00:00): a deadline at midnight reads as the instant it is, where a
    12-hour clock would write 午夜12:00 or 12:00 AM."""
    return format_datetime(value.astimezone(tz), format=_time_pattern(length, locale), locale=_BABEL[locale])


@lru_cache(maxsize=16)
def _time_pattern(length: str, locale: str) -> str:
    """The locale's date of `length` and its way of joining a date and a time ("{1} {0}"), with HH:mm."""
    date_pattern = get_date_format(length, locale=_BABEL[locale]).pattern
    joined = get_datetime_format(length, locale=_BABEL[locale])
    return joined.replace("{1}", date_pattern).replace("{0}", "HH:mm")


class Catalogs:
    def __init__(self, root: Path = LOCALES_DIR) -> None:
        self.messages: dict[str, dict[str, str]] = {}
        for loc in SUPPORTED:
            path = root / loc / "LC_MESSAGES" / "messages.po"
            self.messages[loc] = read_catalog(path) if path.is_file() else {}
        if not self.messages[SOURCE]:
            raise RuntimeError(f"the source catalog {root / SOURCE} is missing")

    def text(self, locale: str, key: str) -> str:
        found = self.messages.get(locale, {}).get(key)
        if found is None:
            found = self.messages[SOURCE].get(key)
            if found is None:
                raise KeyError(f"no message {key!r} in the source catalog")
            log.warning("message %s missing in %s; the source text is used", key, locale)
        return found

    def reason_label(self, locale: str, code: str, policy_labels: Mapping[str, str]) -> str:
        """The policy's own label in Chinese; a translated one elsewhere when the catalog has it."""
        if locale != SOURCE:
            translated = self.messages.get(locale, {}).get(f"reason.{code}")
            if translated:
                return translated
        return policy_labels.get(code, code)


    def render(self, reply: Reply, locale: str, *, tz: ZoneInfo, reasons: Mapping[str, str]) -> str:
        return self.text(locale, reply.key).format(**self.values(reply, locale, tz=tz, reasons=reasons))

    def values(self, reply: Reply, locale: str, *, tz: ZoneInfo, reasons: Mapping[str, str]) -> dict[str, Any]:
        """A reply's parameters as its text shows them: dates in the locale, reasons and cases as lines."""
        params: dict[str, Any] = {}
        for name, value in reply.params.items():
            if isinstance(value, datetime):
                params[name] = local_day(value, tz, locale)
            elif name in ("reasons", "key_reasons"):  # written lines, or keys spoken one after another
                line = self.text(locale, m.REASON_LINE if name == "reasons" else m.VOICE_REASON_LINE)
                params[name] = ("\n" if name == "reasons" else " ").join(
                    line.format(number=n, label=self.reason_label(locale, code, reasons)) for n, code in value)
            elif name == "cases":
                line = self.text(locale, m.CASE_LINE)
                params[name] = "\n".join(
                    line.format(number=i + 1, item=c.item_name, completed_at=local_day(c.completed_at, tz, locale))
                    for i, c in enumerate(value))
            else:
                params[name] = value
        return params
