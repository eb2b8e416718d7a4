"""Phone numbers: one person, whether written 13800138000 or +8613800138000.

Chinese mobiles are checked by their structure (1, then 3–9, then nine digits) rather than by the
operator ranges in phonenumbers' metadata, which lag behind newly opened prefixes; other countries'
numbers must be in E.164 and possible by phonenumbers.
"""

from __future__ import annotations

import re

import phonenumbers

_CN_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_SEPARATORS = re.compile(r"[\s\-().]")


def normalize_phone(raw: object) -> str | None:
    """E.164 (+8613800138000), or None when it is not a mobile number we can text."""
    if not isinstance(raw, str):
        return None
    s = _SEPARATORS.sub("", raw.strip())
    if s.startswith("00"):
        s = "+" + s[2:]
    if _CN_MOBILE.fullmatch(s):
        return "+86" + s
    if s.startswith("+86"):
        return s if _CN_MOBILE.fullmatch(s[3:]) else None
    # E.164 holds at most 15 digits; fewer than 7 is no number anyone can text (phonenumbers still calls
    # some "possible": +4900).
    if s.startswith("+") and s[1:].isdigit() and s.isascii() and 7 <= len(s) - 1 <= 15:
        try:
            parsed = phonenumbers.parse(s, None)
        except phonenumbers.NumberParseException:
            return None
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        # Only numbers already written in canonical E.164: phonenumbers would silently drop a
        # national trunk "0" (+49 0…), and one person must never have two spellings.
        if phonenumbers.is_possible_number(parsed) and e164 == s:
            return e164
    return None


def mask_phone(e164: str) -> str:
    """The national form for China (138****1234), the last four digits otherwise."""
    national = e164[3:] if e164.startswith("+86") else e164
    if len(national) < 8:
        return "****"
    return national[:3] + "****" + national[-4:]


def mask_name(name: str) -> str:
    name = name.strip()
    if not name:
        return ""
    return name[0] + "*" * max(len(name) - 1, 1)


def mask_openid(openid: str) -> str:
    return openid[:4] + "****" + openid[-4:] if len(openid) > 10 else "****"
