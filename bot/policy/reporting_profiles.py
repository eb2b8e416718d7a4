"""Reporting profiles: one upstream platform each (endpoint, authentication, field names, code maps).

A profile is the one place where a named grade or channel becomes a digit (ARCHITECTURE invariant 4).
The two public code lists run in opposite directions (GB/T 39046: 1 = 非常满意; the provincial
interfaces: 1 = 非常不满意), so the direction is never implied: `style` is required, and a grade
table must name all five grades with five distinct codes, or a report could silently say the
opposite of what the citizen said.

Secrets are named by environment variable only: a policy file is data that gets copied, reviewed
and committed, a token must not be.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialogs.grades import Grade

Code = int | str
Style = Literal["gbt39046", "provincial"]
STYLES: tuple[Style, ...] = ("gbt39046", "provincial")

# Every channel a reported rating can carry (bot.rating.ratings.CHANNELS). A callback's answer stored by a
# work order is reported as a change of the bad review it answers, never as a rating; `callback` here
# is a rating that a business system recorded at a callback visit (POST /api/v1/evaluations).
CHANNELS = ("sms", "wechat", "miniprogram", "phone", "web", "qr", "hall", "terminal", "callback", "default")

# The neutral record's fields (bot/figures/reporting/queue.py writes them), plus the idempotency key. `target` is
# "case" or "clerk" (a window visit's clerk-only rating, Shantou art. 22, 28, with its `visit_id`);
# `terminal_id` is the self-service terminal's number (art. 23).
# `grade` and `channel` are the two that a profile encodes; dates are formatted; the rest go as they are.
NEUTRAL_FIELDS = (
    "idempotency_key", "case_no", "item_code", "item_name", "agency_code", "agency_name", "staff_id",
    "staff_name", "hall_code", "hall_name", "district_code", "district_name", "completed_at", "grade", "score",
    "reasons", "text", "channel", "is_default", "is_followup", "via", "status", "callback_result", "rated_at",
    "version", "changed_at", "target", "visit_id", "terminal_id",
)
DATE_FIELDS = ("completed_at", "rated_at", "changed_at")
REQUIRED_FIELDS = ("case_no", "grade")  # a report without them says nothing

GRADE_PRESETS: dict[str, dict[Grade, Code]] = {
    # GB/T 39046 满意度代码: 1 is the best grade.
    "gbt39046": {Grade.VERY_SATISFIED: 1, Grade.SATISFIED: 2, Grade.BASICALLY_SATISFIED: 3,
                 Grade.DISSATISFIED: 4, Grade.VERY_DISSATISFIED: 5},
    # The provincial interfaces' `satisfaction`: 1 is the worst grade.
    "reversed": {Grade.VERY_SATISFIED: 5, Grade.SATISFIED: 4, Grade.BASICALLY_SATISFIED: 3,
                 Grade.DISSATISFIED: 2, Grade.VERY_DISSATISFIED: 1},
}

# `pf` codes 1–5 are common to the public lists; 6 and 7 differ by province. `default` in the GB/T
# style, `phone` in the provincial style and `callback` in both have no code in those lists: 9 ("other")
# is our choice.
CHANNEL_PRESETS: dict[Style, dict[str, Code]] = {
    "gbt39046": {"web": 1, "wechat": 2, "miniprogram": 2, "qr": 3, "hall": 4, "terminal": 5, "phone": 6,
                 "sms": 7, "default": 9, "callback": 9},
    "provincial": {"web": 1, "wechat": 2, "miniprogram": 2, "qr": 3, "hall": 4, "terminal": 5, "sms": 6,
                   "default": 7, "phone": 9, "callback": 9},
}

FIELD_PRESETS: dict[Style, dict[str, str]] = {
    "gbt39046": {
        "idempotency_key": "idempotency_key", "case_no": "case_no", "item_code": "item_code",
        "item_name": "item_name", "agency_code": "agency_code", "agency_name": "agency_name",
        "staff_id": "staff_id", "staff_name": "staff_name", "hall_code": "hall_code", "hall_name": "hall_name",
        "district_code": "district_code", "district_name": "district_name", "completed_at": "completed_at",
        "grade": "satisfaction_code", "score": "score", "reasons": "reasons", "text": "text",
        "channel": "channel_code", "is_default": "is_default", "is_followup": "is_followup", "via": "via",
        "status": "status", "callback_result": "callback_result", "rated_at": "rated_at", "version": "version",
        "changed_at": "changed_at", "target": "target", "visit_id": "visit_id", "terminal_id": "terminal_id",
    },
    "provincial": {
        "idempotency_key": "requestId", "case_no": "projectNo", "item_code": "taskCode", "item_name": "taskName",
        "agency_code": "deptCode", "agency_name": "deptName", "staff_id": "windowUserId",
        "staff_name": "windowUserName", "hall_code": "hallCode", "hall_name": "hallName",
        "district_code": "areaCode", "district_name": "areaName", "completed_at": "finishTime",
        "grade": "satisfaction", "score": "score", "reasons": "appraiseReasons", "text": "appraiseText",
        "channel": "pf", "is_default": "isDefault", "is_followup": "isAppend", "via": "via",
        "status": "status", "callback_result": "visitResult", "rated_at": "appraiseTime", "version": "version",
        "changed_at": "updateTime", "target": "appraiseTarget", "visit_id": "visitNo", "terminal_id": "terminalNo",
    },
}
STYLE_GRADES: dict[Style, str] = {"gbt39046": "gbt39046", "provincial": "reversed"}
DEFAULT_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
ISO = "iso"  # date_format = "iso": ISO-8601 with the offset

AuthType = Literal["none", "bearer", "basic", "hmac", "header"]
# type → (required keys, optional keys); every key ending in _env names an environment variable.
AUTH_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "none": (frozenset(), frozenset()),
    "bearer": (frozenset({"token_env"}), frozenset()),
    "basic": (frozenset({"username", "password_env"}), frozenset()),
    "hmac": (frozenset({"secret_env"}), frozenset({"header"})),
    "header": (frozenset({"header", "value_env"}), frozenset()),
}
HMAC_HEADER = "X-Signature"
KNOWN = {"style", "endpoint", "auth", "fields", "grade_codes", "channel_codes", "date_format", "timezone",
         "timeout_seconds", "retry", "enabled", "success"}
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MissingSecret(Exception):
    """An environment variable a profile names is not set: the push is retried, nothing crashes."""


@dataclass(frozen=True)
class Auth:
    type: AuthType = "none"
    token_env: str | None = None
    username: str | None = None
    password_env: str | None = None
    secret_env: str | None = None
    header: str | None = None
    value_env: str | None = None

    def secret(self, name: str | None) -> str:
        value = os.environ.get(name or "")
        if not value:
            raise MissingSecret(f"environment variable {name} is not set")
        return value


@dataclass(frozen=True)
class Retry:
    first_seconds: float = 30
    max_seconds: float = 3600

    def delay(self, attempts: int) -> float:
        """Seconds before the next attempt, after `attempts` attempts (1 = the first failed)."""
        return min(self.first_seconds * 2 ** min(max(attempts - 1, 0), 62), self.max_seconds)


@dataclass(frozen=True)
class Success:
    """Where a platform says in its answer's body whether it took the record: many answer HTTP 200 to
    everything, `{"code": "E102", "msg": "事项编码不存在"}` included, and a 2xx alone would count that as sent.

    `field` is a dotted path into the JSON answer; values are compared as text (`0`, `"0"` and `0.0`
    are not the same text: write them as the platform does, JSON `true` is "true").
    """

    field: str
    values: tuple[str, ...]
    duplicate: tuple[str, ...] = ()  # "already received": counted as sent, as a 409 is

    def judge(self, answer: bytes) -> tuple[Literal["sent", "duplicate", "refused"], str | None]:
        """What the body says, and the value it said it with (None: no such field, or not JSON)."""
        try:
            value: Any = json.loads(answer.decode("utf-8"))
            for part in self.field.split("."):
                value = value.get(part) if isinstance(value, dict) else None
        except (ValueError, UnicodeDecodeError):
            return "refused", None
        if value is None or isinstance(value, dict | list):
            return "refused", None
        text = value if isinstance(value, str) else json.dumps(value)
        if text in self.values:
            return "sent", text
        return ("duplicate" if text in self.duplicate else "refused"), text


@dataclass(frozen=True)
class ReportingProfile:
    name: str
    endpoint: str
    style: Style = "gbt39046"
    auth: Auth = Auth()
    fields: dict[str, str] = field(default_factory=lambda: dict(FIELD_PRESETS["gbt39046"]))
    grade_codes: dict[Grade, Code] = field(default_factory=lambda: dict(GRADE_PRESETS["gbt39046"]))
    channel_codes: dict[str, Code] = field(default_factory=lambda: dict(CHANNEL_PRESETS["gbt39046"]))
    date_format: str = DEFAULT_DATE_FORMAT
    timezone: str | None = None  # None: the policy's
    timeout_seconds: float = 10
    retry: Retry = Retry()
    enabled: bool = True
    success: Success | None = None  # None: any 2xx means the record was taken

    # --- the edge: names to codes, and back (the tests' inverse) ----------------------------------------

    def grade_code(self, grade: Grade) -> Code:
        return self.grade_codes[grade]

    def grade_of(self, code: Code) -> Grade:
        found = [g for g, c in self.grade_codes.items() if c == code]
        if len(found) != 1:
            raise KeyError(f"{self.name}: no grade has the code {code!r}")
        return found[0]

    def channel_code(self, channel: str) -> Code:
        return self.channel_codes[channel]

    def channels_of(self, code: Code) -> tuple[str, ...]:
        """Channels are not a bijection (WeChat and the mini-program share `pf` 2)."""
        return tuple(c for c, v in self.channel_codes.items() if v == code)

    def body(self, record: dict[str, Any], idempotency_key: str, default_tz: tzinfo) -> dict[str, Any]:
        """The request body of one record: the only place a grade or a channel becomes a code."""
        tz = ZoneInfo(self.timezone) if self.timezone else default_tz
        values: dict[str, Any] = {**record, "idempotency_key": idempotency_key}
        values["grade"] = self.grade_code(Grade(record["grade"]))
        values["channel"] = self.channel_code(record["channel"])
        for name in DATE_FIELDS:
            values[name] = self.format_date(values.get(name), tz)
        return {upstream: values.get(neutral) for neutral, upstream in self.fields.items() if upstream}

    def format_date(self, value: str | None, tz: tzinfo) -> str | None:
        if not value:
            return None
        local = datetime.fromisoformat(value).astimezone(tz)
        return local.isoformat() if self.date_format == ISO else local.strftime(self.date_format)


def parse_profiles(value: Any) -> tuple[ReportingProfile, ...]:
    """`[reporting.<name>]` tables; a ValueError names the key that is wrong."""
    if not isinstance(value, dict):
        raise ValueError(f"reporting: expected tables [reporting.<name>], got {value!r}")
    out = []
    for name, doc in value.items():
        if not NAME.match(str(name)):
            raise ValueError(f"reporting.{name}: a profile's name is 1–64 letters, digits, _ or -")
        out.append(parse_profile(str(name), doc))
    return tuple(out)


def parse_profile(name: str, doc: Any) -> ReportingProfile:
    key = f"reporting.{name}"
    if not isinstance(doc, dict):
        raise ValueError(f"{key}: expected a table, got {doc!r}")
    unknown = set(doc) - KNOWN
    if unknown:
        raise ValueError(f"{key}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(KNOWN))}")
    style = doc.get("style")
    if style not in STYLES:
        raise ValueError(f"{key}.style: required, one of {list(STYLES)} (the preset that says which way the "
                         f"grade codes run), got {style!r}")
    kw: dict[str, Any] = {"style": style, "endpoint": _endpoint(f"{key}.endpoint", doc.get("endpoint"))}
    kw["auth"] = _auth(f"{key}.auth", doc.get("auth", {"type": "none"}))
    kw["fields"] = _fields(f"{key}.fields", doc.get("fields", {}), style)
    kw["grade_codes"] = _grade_codes(f"{key}.grade_codes", doc.get("grade_codes", STYLE_GRADES[style]))
    kw["channel_codes"] = _channel_codes(f"{key}.channel_codes", doc.get("channel_codes", {}), style)
    if "date_format" in doc:
        kw["date_format"] = _date_format(f"{key}.date_format", doc["date_format"])
    if "timezone" in doc:
        try:
            ZoneInfo(str(doc["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{key}.timezone: unknown zone {doc['timezone']!r}") from None
        kw["timezone"] = str(doc["timezone"])
    if "timeout_seconds" in doc:
        kw["timeout_seconds"] = _seconds(f"{key}.timeout_seconds", doc["timeout_seconds"], 300)
    if "retry" in doc:
        kw["retry"] = _retry(f"{key}.retry", doc["retry"])
    if "success" in doc:
        kw["success"] = _success(f"{key}.success", doc["success"])
    if "enabled" in doc:
        if not isinstance(doc["enabled"], bool):
            raise ValueError(f"{key}.enabled: expected true or false, got {doc['enabled']!r}")
        kw["enabled"] = doc["enabled"]
    return ReportingProfile(name=name, **kw)


def _endpoint(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key}: required, an http:// or https:// URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{key}: expected an http:// or https:// URL with a host, got {value!r}")
    if parts.username or parts.password:
        raise ValueError(f"{key}: no credentials in the URL; use auth with an environment variable")
    return value


def _auth(key: str, value: Any) -> Auth:
    if not isinstance(value, dict):
        raise ValueError(f"{key}: expected a table {{ type = \"none\"|\"bearer\"|\"basic\"|\"hmac\"|\"header\", … }}")
    kind = value.get("type")
    if kind not in AUTH_KEYS:
        raise ValueError(f"{key}.type: expected one of {list(AUTH_KEYS)}, got {kind!r}")
    required, optional = AUTH_KEYS[kind]
    given = set(value) - {"type"}
    secrets_inline = sorted(k for k in given if k in ("token", "password", "secret", "value"))
    if secrets_inline:
        raise ValueError(f"{key}.{secrets_inline[0]}: secrets are never written in the policy file; name an "
                         f"environment variable with {secrets_inline[0]}_env")
    if given - required - optional:
        raise ValueError(f"{key}: unknown key(s) for type {kind!r}: {', '.join(sorted(given - required - optional))}"
                         f"; it takes {', '.join(sorted(required | optional)) or 'nothing else'}")
    if required - given:
        raise ValueError(f"{key}: type {kind!r} needs {', '.join(sorted(required - given))}")
    for k in given:
        v = value[k]
        if not isinstance(v, str) or not v:
            raise ValueError(f"{key}.{k}: expected a non-empty string, got {v!r}")
        if k.endswith("_env") and not ENV_NAME.match(v):
            raise ValueError(f"{key}.{k}: expected the name of an environment variable, got {v!r}")
        if k == "header" and not HEADER_NAME.match(v):
            raise ValueError(f"{key}.header: {v!r} is not an HTTP header name")
    return Auth(type=kind, **{k: value[k] for k in given})


def _fields(key: str, value: Any, style: Style) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"{key}: expected a table of neutral name = \"upstream field\" (\"\" drops it)")
    unknown = set(value) - set(NEUTRAL_FIELDS)
    if unknown:
        raise ValueError(f"{key}: unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(NEUTRAL_FIELDS)}")
    for k, v in value.items():
        if not isinstance(v, str):
            raise ValueError(f"{key}.{k}: expected the upstream field's name, or \"\" to leave it out, got {v!r}")
        if not v and k in REQUIRED_FIELDS:
            raise ValueError(f"{key}.{k}: cannot be left out (a report without it says nothing)")
    fields = {**FIELD_PRESETS[style], **value}
    names = [v for v in fields.values() if v]
    twice = sorted({v for v in names if names.count(v) > 1})
    if twice:
        raise ValueError(f"{key}: the upstream field(s) {', '.join(twice)} would receive two values")
    return fields


def _code(key: str, value: Any) -> Code:
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise ValueError(f"{key}: expected a whole number or a non-empty string, got {value!r}")
    return value


def _grade_codes(key: str, value: Any) -> dict[Grade, Code]:
    if isinstance(value, str):
        if value not in GRADE_PRESETS:
            raise ValueError(f"{key}: expected \"gbt39046\", \"reversed\" or a table of the five grades, "
                             f"got {value!r}")
        return dict(GRADE_PRESETS[value])
    if not isinstance(value, dict):
        raise ValueError(f"{key}: expected \"gbt39046\", \"reversed\" or a table of the five grades")
    names = [g.value for g in Grade]
    unknown = set(value) - set(names)
    if unknown:
        raise ValueError(f"{key}: unknown grade(s) {', '.join(sorted(unknown))}; the grades: {', '.join(names)}")
    missing = [n for n in names if n not in value]
    if missing:
        raise ValueError(f"{key}: every grade needs a code; missing {', '.join(missing)}")
    codes = {Grade(k): _code(f"{key}.{k}", v) for k, v in value.items()}
    seen: dict[Code, Grade] = {}
    for grade, code in codes.items():
        if code in seen:
            raise ValueError(f"{key}: {seen[code].value} and {grade.value} both have the code {code!r}; "
                             f"each grade needs its own")
        seen[code] = grade
    return codes


def _channel_codes(key: str, value: Any, style: Style) -> dict[str, Code]:
    if not isinstance(value, dict):
        raise ValueError(f"{key}: expected a table of channel = code")
    unknown = set(value) - set(CHANNELS)
    if unknown:
        raise ValueError(f"{key}: unknown channel(s) {', '.join(sorted(unknown))}; channels: {', '.join(CHANNELS)}")
    return {**CHANNEL_PRESETS[style], **{k: _code(f"{key}.{k}", v) for k, v in value.items()}}


def _date_format(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key}: expected a strftime format (\"%Y-%m-%d %H:%M:%S\") or \"iso\", got {value!r}")
    if value == ISO:
        return value
    sample = datetime(2026, 11, 20, 9, 8, 7, tzinfo=UTC)
    try:
        out = sample.strftime(value)
    except ValueError as exc:
        raise ValueError(f"{key}: {value!r} is not a strftime format ({exc})") from None
    if out == value:
        raise ValueError(f"{key}: {value!r} holds no date directive (%Y, %m, %d, …)")
    return value


def _seconds(key: str, value: Any, at_most: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= at_most:
        raise ValueError(f"{key}: expected a number of seconds above 0 and at most {at_most:g}, got {value!r}")
    return float(value)


def _retry(key: str, value: Any) -> Retry:
    if not isinstance(value, dict) or set(value) - {"first_seconds", "max_seconds"}:
        raise ValueError(f"{key}: expected {{ first_seconds = 30, max_seconds = 3600 }}, got {value!r}")
    first = _seconds(f"{key}.first_seconds", value.get("first_seconds", 30), 86_400)
    most = _seconds(f"{key}.max_seconds", value.get("max_seconds", 3600), 7 * 86_400)
    if most < first:
        raise ValueError(f"{key}: max_seconds ({most:g}) is below first_seconds ({first:g})")
    return Retry(first, most)


def _success(key: str, value: Any) -> Success:
    if not isinstance(value, dict) or set(value) - {"field", "values", "duplicate"} \
            or not {"field", "values"} <= set(value):
        raise ValueError(f"{key}: expected {{ field = \"code\", values = [\"0\"], duplicate = [...] }}, got {value!r}")
    path = value["field"]
    if not isinstance(path, str) or not all(path.split(".")):
        raise ValueError(f"{key}.field: expected a field name or a dotted path (data.status), got {path!r}")
    lists = {}
    for name in ("values", "duplicate"):
        given = value.get(name, [])
        if not isinstance(given, list) or not all(isinstance(v, str | int | bool) for v in given) \
                or (name == "values" and not given):
            raise ValueError(f"{key}.{name}: expected a list of codes (strings or numbers), got {given!r}")
        lists[name] = tuple(v if isinstance(v, str) else json.dumps(v) for v in given)
    both = set(lists["values"]) & set(lists["duplicate"])
    if both:
        raise ValueError(f"{key}: {sorted(both)} both a success and a duplicate")
    return Success(path, lists["values"], lists["duplicate"])
