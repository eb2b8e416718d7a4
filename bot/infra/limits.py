"""What the service takes at its edges (CONTRACT "Rules of detail"), defined once for the API, the pages,
the webhooks and the command line.

- Text: a control character (C0 or C1, DEL) other than tab, CR and LF is refused (422 naming the field)
  in the API and on the pages, and removed from a citizen's message (dialogs.parse.clean). In an id, a
  code, a path or a query parameter no control character at all is taken.
- Dates: an instant is accepted when the date it is written with (in its own offset) lies between
  FIRST_DAY and LAST_DAY, 2000-01-01 and 2099-12-31. A period (`from`, `to`) reaching outside is clamped:
  a date to those local days, an instant to EARLIEST … LATEST, the first and last moments any accepted
  instant can be (its day written at UTC+14, resp. UTC−12). Every date computation (a reminder a day
  later, a default some working days later, a year's calendar) then stays inside what Python's datetime
  and the databases hold.
- Ids: rows are numbered by INTEGER columns (PostgreSQL's is 32-bit); an id above MAX_ID names nothing.
- Log lines: every control character, the line and paragraph separators and the bidirectional controls
  are written as escapes (\\n, \\x1b, \\u202e), so that one record is one line and reads as it is.
- Pages: the same characters are shown as a visible mark ([U+202E]) instead of being obeyed.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from dialogs.parse import CONTROL

FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
RANGE_TEXT = f"{FIRST_DAY.isoformat()} … {LAST_DAY.isoformat()}"
EARLIEST = datetime.combine(FIRST_DAY, time(0), tzinfo=timezone(timedelta(hours=14)))
LATEST = datetime.combine(LAST_DAY + timedelta(days=1), time(0), tzinfo=timezone(timedelta(hours=-12)))
MAX_ID = 2**31 - 1

ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_SHOWN = re.compile(rf"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}\u2028\u2029]")
_LOGGED = re.compile(rf"[\x00-\x1f\x7f-\x9f{_BIDI}\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

CONTROL_MESSAGE = "control characters (other than tab, CR and LF) are not accepted"
ID_CONTROL_MESSAGE = "control characters are not accepted"


def text_problem(value: object) -> str | None:
    """Why a free text (a name, a note, a rater's words) is refused, or None."""
    return CONTROL_MESSAGE if isinstance(value, str) and CONTROL.search(value) else None


def code_problem(value: object) -> str | None:
    """Why an id, a code or a query parameter is refused, or None: no control character at all."""
    return ID_CONTROL_MESSAGE if isinstance(value, str) and ANY_CONTROL.search(value) else None


def instant_problem(value: datetime) -> str | None:
    if FIRST_DAY.year <= value.year <= LAST_DAY.year:
        return None
    return f"outside the accepted dates {RANGE_TEXT}"


def clamp_instant(value: datetime) -> datetime:
    if value.year < FIRST_DAY.year:
        return EARLIEST
    if value.year > LAST_DAY.year:
        return LATEST
    return max(EARLIEST, min(LATEST, value))


def day_bound(day: date, tz: tzinfo, *, end: bool) -> datetime:
    """The start of a local day (`end`: of the day after it), clamped to the accepted days."""
    if day > LAST_DAY:
        bound = LAST_DAY + timedelta(days=1)
    elif day < FIRST_DAY:
        bound = FIRST_DAY
    else:
        bound = day + timedelta(days=1 if end else 0)
    return datetime.combine(bound, time(0), tzinfo=tz)


def clamp_day(day: date) -> date:
    return max(FIRST_DAY, min(LAST_DAY, day))


def parse_id(text: str) -> int | None:
    """A row id written in a path or a query, or None when it cannot name a row (then: 404)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


def _escape(m: re.Match[str]) -> str:
    c = m.group(0)
    return _ESCAPES.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def escaped(text: str) -> str:
    """A log line's text with its control, separator and bidi characters as visible escapes."""
    return _LOGGED.sub(_escape, text)


def shown(text: str) -> str:
    """A text for a page: control and bidi characters (tab, CR, LF aside) as a visible mark [U+202E]."""
    return _SHOWN.sub(lambda m: f"[U+{ord(m.group(0)):04X}]", text)
