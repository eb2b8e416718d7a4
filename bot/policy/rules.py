"""The jurisdiction's rules as data (ARCHITECTURE invariant 6): no deadline or grade is hard-coded.

Every key is optional; the defaults are the contract's built-in values. Unknown keys are refused
with the key's name, because a misspelt deadline silently ignored is worse than a service that will
not start.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.policy import sms_templates
from bot.policy.reporting_profiles import ReportingProfile, parse_profiles
from bot.policy.spans import DaySpan
from bot.policy.statistics import StatisticsRules, parse_statistics
from bot.policy.supervision import SupervisionRules, parse_supervision
from dialogs import keypad
from dialogs.grades import Grade


class PolicyError(ValueError):
    pass


CALLBACK_BY = ("agent", "sms", "call")
CALL_PLACERS = ("twilio", "dialer")


@dataclass(frozen=True)
class CallbackRules:
    """How a work order's callback (回访) is made, beyond the contract's keys (documented in docs/configuration.md).

    `by`: who asks the rater: "agent" (a 12345 agent, always possible), "sms" (a text the rater
    answers 1/2/3), "call" (an automated Twilio call, keys 1/2/3). `unreachable_after` callbacks that
    reached nobody close the work order `unreachable`; automated calls that go unanswered are
    retried `call_retries` times, `call_interval_minutes` apart, only inside `call_hours`, and then
    the work order waits in the agents' queue.
    """

    days: int = 3  # working days for the callback step, after the review
    unreachable_after: int = 3
    by: tuple[str, ...] = ("agent",)
    call_retries: int = 3
    call_interval_minutes: int = 60
    call_hours: tuple[time, time] = (time(8, 0), time(21, 0))
    # Who places the automated calls: "twilio" (the tick, through Twilio's Calls API), or "dialer" (the centre's
    # own dialer leases them from GET /api/v1/hotline/due-calls and runs the JSON keypad dialog; issue 24).
    placed_by: str = "twilio"


DEFAULT_REASONS: dict[str, str] = {
    "attitude": "服务态度差",
    "efficiency": "办事效率低",
    "process": "办事流程繁琐",
    "guide": "办事指南不清楚",
    "trips": "多次跑动",
    "platform": "平台不好用",
    "fees": "收费不合理",
    "other": "其他",
}
# The built-in reasons that concern the clerk rather than the agency (服务态度, Shantou art. 27's clerk options).
DEFAULT_CLERK_REASONS: tuple[str, ...] = ("attitude",)
WORK_ORDER_KEYS = {"dispatch", "rectify", "review", "contact"}


@dataclass(frozen=True)
class Policy:
    timezone: str = "Asia/Shanghai"
    reminder_after_hours: float = 24
    quiet_hours: tuple[time, time] = (time(21, 0), time(8, 0))
    default_grade: Grade = Grade.BASICALLY_SATISFIED
    default_after: DaySpan = DaySpan(5, "working")
    followup_window: DaySpan = DaySpan(5, "working")
    appeal_window: DaySpan = DaySpan(5, "working")
    # Ours (issue 21): an appeal is decided within this, counted from the appeal (Shantou art. 37).
    appeal_decision: DaySpan = DaySpan(5, "working")
    # Ours: a project owner's complaint about an intermediary (Hainan 中介服务 art. 23, 25;
    # bot/rating/intermediaries.py).
    intermediary_complaint_window: DaySpan = DaySpan(10, "working")  # after the contract was fulfilled
    intermediary_complaint_answer: DaySpan = DaySpan(5, "working")  # the centre's answer, after receipt
    # dispatch, rectify, review; and ours, `contact` (Shandong art. 14): when above 0, the agency records its
    # contact with the rater within that many working days of taking the work order on. Absent or 0: off.
    work_order: dict[str, int] = field(default_factory=lambda: {"dispatch": 2, "rectify": 10, "review": 3})
    callback_reopen_limit: int = 1
    blacklist: dict[str, int] = field(
        default_factory=lambda: {"false_reviews": 3, "within_days": 365, "barred_days": 365})
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    reasons: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_REASONS))
    miniprogram_fields: dict[str, str] = field(
        default_factory=lambda: {"item": "thing1", "completed_at": "time2", "agency": "thing3"})
    # Ours, beyond the contract's list (documented in docs/configuration.md):
    callback: CallbackRules = CallbackRules()
    # Reasons that concern the window clerk: a bad review giving one names the clerk on its work order.
    # Every one is a code of `reasons` (parse_policy refuses others): a code no rater can give is a rule
    # that never applies.
    clerk_reasons: tuple[str, ...] = DEFAULT_CLERK_REASONS
    conversation_hours: float = 24  # an SMS conversation waits this long for a grade or reasons
    more_text_minutes: float = 30  # and this long for the optional sentence after a bad rating
    statistics: StatisticsRules = field(default_factory=StatisticsRules)  # [statistics] and [halls.<code>] (issue 8)
    reporting: tuple[ReportingProfile, ...] = ()  # [reporting.<name>]: the upstream platforms
    sms_templates: dict[str, SmsTemplate] = field(default_factory=dict)  # [sms.templates."<key>"] (CONTRACT)
    # Ours (issue 24): [hotline.recordings.<locale>] "<prompt key>" = "<file>": the recordings a centre plays
    # instead of its text-to-speech, named in the JSON keypad dialog's answers (docs/hotline.md).
    hotline_recordings: dict[str, dict[str, str]] = field(default_factory=dict)
    # Ours (issue 25): [supervision.<signal>] thresholds and [supervision.callbacks] (bot/policy/supervision.py).
    supervision: SupervisionRules = field(default_factory=SupervisionRules)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def reminder_after(self) -> timedelta:
        return timedelta(hours=self.reminder_after_hours)

    def in_quiet_hours(self, local: time) -> bool:
        start, end = self.quiet_hours
        if start == end:
            return False
        if start < end:
            return start <= local < end
        return local >= start or local < end


_KNOWN = {
    "timezone", "reminder_after_hours", "quiet_hours", "default_grade", "default_after",
    "followup_window", "appeal_window", "appeal_decision", "intermediary_complaint_window",
    "intermediary_complaint_answer", "work_order", "callback_reopen_limit", "blacklist",
    "calendar_overrides", "reasons", "miniprogram", "conversation_hours", "more_text_minutes",
    "callback", "clerk_reasons", "statistics", "halls", "reporting", "sms", "hotline", "supervision",
}


def _hhmm(key: str, value: Any) -> time:
    try:
        hh, mm = str(value).split(":")
        return time(int(hh), int(mm))
    except ValueError:
        raise PolicyError(f"{key}: expected \"HH:MM\", got {value!r}") from None


def _positive(key: str, value: Any, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise PolicyError(f"{key}: expected a positive number, got {value!r}")
    return float(value)


def _int_table(key: str, value: Any, keys: set[str]) -> dict[str, int]:
    if not isinstance(value, dict) or set(value) - keys:
        raise PolicyError(f"{key}: expected a table with keys {sorted(keys)}, got {value!r}")
    for k, v in value.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise PolicyError(f"{key}.{k}: expected a whole number >= 0, got {v!r}")
    return dict(value)


def _dates(key: str, value: Any) -> frozenset[date]:
    if not isinstance(value, list):
        raise PolicyError(f"{key}: expected a list of ISO dates, got {value!r}")
    out = set()
    for v in value:
        try:
            out.add(v if isinstance(v, date) else date.fromisoformat(str(v)))
        except ValueError:
            raise PolicyError(f"{key}: {v!r} is not an ISO date (YYYY-MM-DD)") from None
    return frozenset(out)


@dataclass(frozen=True)
class SmsTemplate:
    """A message key's template at each template provider (its TemplateCode or TemplateId) and the values it
    takes, in the order the provider's parameter list wants them (bot/policy/sms_templates.py)."""

    codes: dict[str, str]
    params: tuple[str, ...]


TEMPLATE_PROVIDERS = ("aliyun", "tencent")


def _sms_templates(raw: Any) -> dict[str, SmsTemplate]:
    if not isinstance(raw, dict) or set(raw) - {"templates"}:
        raise PolicyError("sms: expected [sms.templates.\"<message key>\"] tables")
    tables = raw.get("templates", {})
    if not isinstance(tables, dict):
        raise PolicyError("sms.templates: expected a table per message key")
    out: dict[str, SmsTemplate] = {}
    for key, table in tables.items():
        where = f"sms.templates.\"{key}\""
        if key not in sms_templates.VALUES:
            raise PolicyError(f"{where}: no SMS message has this key; expected one of "
                              f"{', '.join(sms_templates.VALUES)}")
        if not isinstance(table, dict) or set(table) - {*TEMPLATE_PROVIDERS, "params"}:
            raise PolicyError(f"{where}: expected aliyun = \"…\", tencent = \"…\", params = [...]")
        params = table.get("params", [])
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise PolicyError(f"{where}.params: expected a list of value names")
        unknown = [p for p in params if p not in sms_templates.VALUES[key]]
        if unknown:
            offered = ", ".join(sms_templates.VALUES[key]) or "none"
            raise PolicyError(f"{where}.params: {', '.join(unknown)} is not a value of {key} (it has: {offered})")
        codes = {name: table[name] for name in TEMPLATE_PROVIDERS if name in table}
        if not all(isinstance(c, str) and c.strip() for c in codes.values()):
            raise PolicyError(f"{where}: a template code is a non-empty string")
        out[key] = SmsTemplate({k: v.strip() for k, v in codes.items()}, tuple(params))
    return out


def parse_policy(doc: dict[str, Any]) -> Policy:
    unknown = set(doc) - _KNOWN
    if unknown:
        raise PolicyError(f"unknown policy key(s): {', '.join(sorted(unknown))}")
    base = Policy()
    kw: dict[str, Any] = {}
    if "timezone" in doc:
        try:
            ZoneInfo(str(doc["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise PolicyError(f"timezone: unknown zone {doc['timezone']!r}") from None
        kw["timezone"] = str(doc["timezone"])
    if "reminder_after_hours" in doc:
        kw["reminder_after_hours"] = _positive("reminder_after_hours", doc["reminder_after_hours"],
                                               allow_zero=True)
    if "quiet_hours" in doc:
        q = doc["quiet_hours"]
        if not isinstance(q, list) or len(q) != 2:
            raise PolicyError(f"quiet_hours: expected [\"HH:MM\", \"HH:MM\"], got {q!r}")
        kw["quiet_hours"] = (_hhmm("quiet_hours[0]", q[0]), _hhmm("quiet_hours[1]", q[1]))
    if "default_grade" in doc:
        try:
            kw["default_grade"] = Grade(doc["default_grade"])
        except ValueError:
            raise PolicyError(f"default_grade: expected one of {[g.value for g in Grade]}") from None
    for key in ("default_after", "followup_window", "appeal_window", "appeal_decision",
                "intermediary_complaint_window", "intermediary_complaint_answer"):
        if key in doc:
            try:
                kw[key] = DaySpan.parse(key, doc[key])
            except ValueError as exc:
                raise PolicyError(str(exc)) from None
    if "work_order" in doc:
        kw["work_order"] = {**base.work_order,
                            **_int_table("work_order", doc["work_order"], WORK_ORDER_KEYS)}
    if "callback_reopen_limit" in doc:
        v = doc["callback_reopen_limit"]
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise PolicyError(f"callback_reopen_limit: expected a whole number >= 0, got {v!r}")
        kw["callback_reopen_limit"] = v
    if "blacklist" in doc:
        kw["blacklist"] = {**base.blacklist, **_int_table(
            "blacklist", doc["blacklist"], {"false_reviews", "within_days", "barred_days"})}
    if "calendar_overrides" in doc:
        co = doc["calendar_overrides"]
        if not isinstance(co, dict) or set(co) - {"holidays", "workdays"}:
            raise PolicyError("calendar_overrides: expected { holidays = [...], workdays = [...] }")
        kw["holidays"] = _dates("calendar_overrides.holidays", co.get("holidays", []))
        kw["workdays"] = _dates("calendar_overrides.workdays", co.get("workdays", []))
        both = kw["holidays"] & kw["workdays"]
        if both:
            raise PolicyError(f"calendar_overrides: {sorted(d.isoformat() for d in both)} both holiday and workday")
    if "reasons" in doc:
        r = doc["reasons"]
        if not isinstance(r, dict) or not r or not all(isinstance(v, str) and v for v in r.values()):
            raise PolicyError("reasons: expected a table of code = \"label\" with at least one reason")
        kw["reasons"] = dict(r)
    if "miniprogram" in doc:
        mp = doc["miniprogram"]
        fields = mp.get("fields") if isinstance(mp, dict) else None
        if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
            raise PolicyError("miniprogram.fields: expected a table of name = \"template field\"")
        kw["miniprogram_fields"] = {**base.miniprogram_fields, **fields}
    if "sms" in doc:
        kw["sms_templates"] = _sms_templates(doc["sms"])
    if "hotline" in doc:
        kw["hotline_recordings"] = _recordings(doc["hotline"])
    if "conversation_hours" in doc:
        kw["conversation_hours"] = _positive("conversation_hours", doc["conversation_hours"])
    if "more_text_minutes" in doc:
        kw["more_text_minutes"] = _positive("more_text_minutes", doc["more_text_minutes"])
    if "callback" in doc:
        kw["callback"] = _callback(doc["callback"])
    kw["clerk_reasons"] = _clerk_reasons(doc, kw.get("reasons", base.reasons))
    if "statistics" in doc or "halls" in doc:
        try:
            kw["statistics"] = parse_statistics(doc.get("statistics"), doc.get("halls"))
        except ValueError as exc:
            raise PolicyError(str(exc)) from None
    if "reporting" in doc:
        try:
            kw["reporting"] = parse_profiles(doc["reporting"])
        except ValueError as exc:
            raise PolicyError(str(exc)) from None
    if "supervision" in doc:
        try:
            kw["supervision"] = parse_supervision(doc["supervision"])
        except ValueError as exc:
            raise PolicyError(str(exc)) from None
    return Policy(**kw)


_RECORDING = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*")
RECORDING_MAX = 200
# The service's locales (bot/infra/i18n.py SUPPORTED, which policy, the lowest room, may not import; a test holds
# the two equal).
RECORDING_LOCALES = ("zh_Hans", "zh_Hant", "en")


def _recordings(doc: Any) -> dict[str, dict[str, str]]:
    """[hotline.recordings.<locale>]: a file per prompt key. A key the dialog never says, or one it says with
    values (always spoken), is refused by name, as is a file name a switch could take outside its sound folder."""
    where = "hotline.recordings"
    if not isinstance(doc, dict) or set(doc) - {"recordings"}:
        raise PolicyError(f"hotline: expected only a [{where}.<locale>] table per locale")
    tables = doc.get("recordings", {})
    if not isinstance(tables, dict):
        raise PolicyError(f"{where}: expected a table per locale ({', '.join(RECORDING_LOCALES)})")
    found: dict[str, dict[str, str]] = {}
    for locale, files in tables.items():
        if locale not in RECORDING_LOCALES:
            raise PolicyError(f"{where}.{locale}: not a locale of the service ({', '.join(RECORDING_LOCALES)})")
        if not isinstance(files, dict):
            raise PolicyError(f"{where}.{locale}: expected \"<prompt key>\" = \"<file>\" lines")
        for key, name in files.items():
            if key not in keypad.RECORDABLE:
                raise PolicyError(f"{where}.{locale}.{key}: not a prompt that can be recorded "
                                  f"(those are: {', '.join(keypad.RECORDABLE)})")
            if not isinstance(name, str) or len(name) > RECORDING_MAX or not _RECORDING.fullmatch(name) \
                    or ".." in name.split("/"):
                raise PolicyError(f"{where}.{locale}.{key}: expected a relative file name of letters, digits, "
                                  f"'_', '-', '.' and '/' (at most {RECORDING_MAX} characters), got {name!r}")
        found[locale] = dict(files)
    return found


def _clerk_reasons(doc: dict[str, Any], reasons: dict[str, str]) -> tuple[str, ...]:
    """The clerk's reasons, each a code of the policy's reasons. Given ones naming another code are refused by
    name (a misspelt code would silently never name a clerk); the built-in ones follow a policy's own reason
    list: those of them it keeps."""
    if "clerk_reasons" not in doc:
        return tuple(code for code in DEFAULT_CLERK_REASONS if code in reasons)
    cr = doc["clerk_reasons"]
    if not isinstance(cr, list) or not all(isinstance(c, str) for c in cr):
        raise PolicyError(f"clerk_reasons: expected a list of reason codes, got {cr!r}")
    unknown = [c for c in dict.fromkeys(cr) if c not in reasons]
    if unknown:
        raise PolicyError(f"clerk_reasons: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not among "
                          f"the reasons ({', '.join(reasons)})")
    return tuple(dict.fromkeys(cr))


def _callback(value: Any) -> CallbackRules:
    keys = {"days", "unreachable_after", "by", "call_retries", "call_interval_minutes", "call_hours", "placed_by"}
    if not isinstance(value, dict) or set(value) - keys:
        raise PolicyError(f"callback: expected a table with keys {sorted(keys)}, got {value!r}")
    ints = _int_table("callback", {k: v for k, v in value.items() if k not in ("by", "call_hours", "placed_by")},
                      keys - {"by", "call_hours", "placed_by"})
    kw: dict[str, Any] = dict(ints)
    if kw.get("unreachable_after", 1) < 1 or kw.get("call_interval_minutes", 1) < 1:
        raise PolicyError("callback.unreachable_after and callback.call_interval_minutes must be at least 1")
    if "by" in value:
        by = value["by"]
        if not isinstance(by, list) or not by or any(b not in CALLBACK_BY for b in by):
            raise PolicyError(f"callback.by: expected a list drawn from {list(CALLBACK_BY)}, got {by!r}")
        kw["by"] = tuple(dict.fromkeys(by))
    if "placed_by" in value:
        if value["placed_by"] not in CALL_PLACERS:
            raise PolicyError(f"callback.placed_by: expected one of {list(CALL_PLACERS)}, got {value['placed_by']!r}")
        kw["placed_by"] = value["placed_by"]
    if "call_hours" in value:
        h = value["call_hours"]
        if not isinstance(h, list) or len(h) != 2:
            raise PolicyError(f"callback.call_hours: expected [\"HH:MM\", \"HH:MM\"], got {h!r}")
        start, end = _hhmm("callback.call_hours[0]", h[0]), _hhmm("callback.call_hours[1]", h[1])
        if not start < end:
            raise PolicyError("callback.call_hours: the start must come before the end, within one day")
        kw["call_hours"] = (start, end)
    return CallbackRules(**kw)


def load_policy(path: str | Path | None) -> Policy:
    if not path:
        return Policy()
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise PolicyError(f"policy file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy file {path}: {exc}") from None
    try:
        return parse_policy(doc)
    except PolicyError as exc:
        raise PolicyError(f"policy file {path}: {exc}") from None
