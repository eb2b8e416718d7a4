"""SMS templates (模板): what a template provider (Aliyun, Tencent) needs to send a message of ours.

China's SMS clouds send only templates approved in advance, filled with values. So every SMS message keeps,
beside its rendered text, its catalog key and the values that key offers, as text (the outbox payload
{"key", "values"}); the policy's [sms.templates."<key>"] maps the key to each provider's template and the
values it takes, in order (CONTRACT "Templates"). Neither provider approves a URL inside a value, so a
template holds the fixed PUBLIC_URL/r/ and the value `token` completes the rating link.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from channels.aliyun import sms as aliyun_sms
from dialogs import messages as m

# Every key the SMS dialog sends, with the values each offers (docs/providers.md lists them). A template
# provider refuses to start while one of CONTRACT_KEYS lacks its template; the others (a help text, the
# answer to a picture) are sent only where the policy gives them a template.
VALUES: dict[str, tuple[str, ...]] = {
    m.REMINDER: ("item", "agency", "completed_at", "token", "link"),
    m.MENU: ("item", "completed_at", "token", "link", "count"),
    m.REPROMPT: ("item",),
    m.USE_LINK: ("token", "link"),
    m.THANKS: (),
    m.ASK_REASONS: ("reasons",),
    m.REPROMPT_REASONS: ("reasons",),
    m.ASK_TEXT: (),
    m.THANKS_BAD: (),
    m.THANKS_TEXT: (),
    m.OPTED_OUT: (),
    m.NOTHING_TO_RATE: (),
    m.UNKNOWN_SENDER: (),
    m.LIST: ("count", "cases"),
    m.BARRED: ("until",),
    m.CALLBACK_ASK: ("item", "completed_at"),
    m.CALLBACK_REPROMPT: (),
    m.CALLBACK_THANKS: (),
    m.GRADE_MENU: ("item", "token", "link"),
    m.TEXT_ONLY: (),
    m.HELP: (),
}
CONTRACT_KEYS: tuple[str, ...] = (
    m.REMINDER, m.MENU, m.REPROMPT, m.USE_LINK, m.THANKS, m.ASK_REASONS, m.REPROMPT_REASONS, m.ASK_TEXT,
    m.THANKS_BAD, m.THANKS_TEXT, m.OPTED_OUT, m.NOTHING_TO_RATE, m.UNKNOWN_SENDER, m.LIST, m.BARRED,
    m.CALLBACK_ASK, m.CALLBACK_REPROMPT, m.CALLBACK_THANKS,
)

# How long a value may be, in characters (as both providers count them: a Chinese character is one).
# Aliyun refuses a longer value (35 for a notification template's 其他, channels/aliyun/sms.py), so its sender
# shortens one; the simulator shows that.
ALIYUN_VALUE_MAX = aliyun_sms.VALUE_MAX
# Tencent, FAQ 短信正文模板中每个变量是否有字数限制, https://cloud.tencent.com/document/product/382/13301: 6 characters
# for a variable of a template other than a verification code's, unless the template's review approved longer ones.
# Sent whole: only the review knows what it approved; the simulator warns.
TENCENT_VALUE_MAX = 6
VALUE_MAX: dict[str, int] = {"aliyun": ALIYUN_VALUE_MAX, "tencent": TENCENT_VALUE_MAX}


def missing(given: Collection[str]) -> list[str]:
    """The contract's keys without a template among `given`: a template provider refuses to start on them."""
    return [key for key in CONTRACT_KEYS if key not in given]


def payload(key: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The outbox payload of an SMS: its key and the values it offers, as single-line text."""
    offered = VALUES.get(key, ())
    found: dict[str, str] = {}
    for name in offered:
        if name == "token":
            link = str(values.get("link") or "")
            found[name] = link.rsplit("/r/", 1)[1] if "/r/" in link else ""
        elif name in values:
            found[name] = " ".join(str(values[name]).split())  # SMS template values hold no line breaks
    return {"key": key, "values": found}


def too_long(provider: str, values: Mapping[str, str]) -> list[str]:
    """The names of the values longer than `provider` takes (VALUE_MAX), in their order: values it may refuse. A
    provider without a limit here (a text provider) refuses none."""
    limit = VALUE_MAX.get(provider)
    if limit is None:
        return []
    return [name for name, value in values.items() if len(str(value)) > limit]
