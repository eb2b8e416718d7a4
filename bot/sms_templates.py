"""SMS templates (模板): what a template provider (Aliyun, Tencent) needs to send a message of ours.

China's SMS clouds send only templates approved in advance, filled with values. So every SMS message keeps,
beside its rendered text, its catalog key and the values that key offers, as text (the outbox payload
{"key", "values"}); the policy's [sms.templates."<key>"] maps the key to each provider's template and the
values it takes, in order (CONTRACT "Templates"). Neither provider approves a URL inside a value, so a
template holds the fixed PUBLIC_URL/r/ and the value `token` completes the rating link.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
