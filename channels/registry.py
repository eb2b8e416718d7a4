"""The SMS providers, by the name HAOCHAPING_SMS_PROVIDER takes. Adding one is a package under channels/ and
one line here."""

from __future__ import annotations

from channels import aliyun, cmpp, local, tencent, twilio
from channels.base import SmsProvider

SMS_PROVIDERS: dict[str, SmsProvider] = {p.name: p for p in (
    local.PROVIDER,
    twilio.PROVIDER,
    aliyun.PROVIDER,
    tencent.PROVIDER,
    cmpp.PROVIDER,
)}


def provider_keys() -> tuple[str, ...]:
    """Every configuration variable a registered provider reads."""
    return tuple(dict.fromkeys(key for p in SMS_PROVIDERS.values() for key in p.keys))
