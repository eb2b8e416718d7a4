"""A carrier's SMS gateway (ISMG) over CMPP 3.0 or 2.0, the protocol of China Mobile's 106 numbers that the
other carriers' gateways also speak: HAOCHAPING_SMS_PROVIDER=cmpp.

- pdu.py: the PDUs of both versions, the authenticator, Msg_Id, UCS2 text split behind a UDH, replies decoded by
  Msg_Fmt (UCS2, GBK, ASCII). The specification and the sources read are named there.
- link.py: one TCP session: CONNECT, a reader answering ACTIVE_TEST and TERMINATE, our heartbeat after silence,
  the window of SUBMITs awaiting their SUBMIT_RESP, TERMINATE on close.
- channel.py: `serve` keeps one session logged in (start()); `tick` sends on a short session of its own within
  CMPP_MAX_CONNECTIONS; DELIVERs become the application's messages (Registered_Delivery 0) and receipts (1), each
  answered with DELIVER_RESP once acted on; the sender and its find_sent.

No route is registered: the application's handlers (routes()) are kept for the sessions' DELIVERs.
"""

from __future__ import annotations

from collections.abc import Mapping

from channels.base import ConfigProblem, ProviderConfig, SmsProvider
from channels.cmpp import pdu
from channels.cmpp.channel import CmppChannel, CmppSender, LookupPending
from channels.cmpp.link import Account, Timing

KEYS = ("CMPP_HOST", "CMPP_PORT", "CMPP_SP_ID", "CMPP_SECRET", "CMPP_SRC_ID", "CMPP_SERVICE_ID", "CMPP_VERSION",
        "CMPP_MAX_CONNECTIONS")
REQUIRED = ("CMPP_HOST", "CMPP_SP_ID", "CMPP_SECRET", "CMPP_SRC_ID", "CMPP_SERVICE_ID")
DEFAULT_PORT = 7890

__all__ = ["KEYS", "PROVIDER", "Account", "CmppChannel", "CmppSender", "LookupPending", "Timing", "account_of",
           "open_channel"]


def _whole(values: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = values.get(key, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ConfigProblem(f"{key}: expected a whole number from {low} to {high}, got {raw!r}")
    return int(raw)


def _field(values: Mapping[str, str], key: str, size: int, digits: bool = False) -> str:
    value = values[key].strip()
    if not value.isascii() or len(value) > size or not value.isprintable() or (digits and not value.isdigit()):
        kind = "digits" if digits else "ASCII characters"
        raise ConfigProblem(f"{key}: expected at most {size} {kind}, got {value!r}")
    return value


def account_of(values: Mapping[str, str]) -> Account:
    """CMPP_* as the gateway takes them; ConfigProblem naming what is missing or wrong."""
    missing = [key for key in REQUIRED if not values.get(key, "").strip()]
    if missing:
        raise ConfigProblem(f"HAOCHAPING_SMS_PROVIDER=cmpp needs {', '.join(REQUIRED)}; unset: {', '.join(missing)}")
    version = values.get("CMPP_VERSION", "3.0").strip() or "3.0"
    if version not in pdu.VERSIONS:
        raise ConfigProblem(f"CMPP_VERSION: expected 3.0 or 2.0, got {version!r}")
    return Account(host=values["CMPP_HOST"].strip(), port=_whole(values, "CMPP_PORT", DEFAULT_PORT, 1, 65535),
                   sp_id=_field(values, "CMPP_SP_ID", 6), secret=values["CMPP_SECRET"],
                   src_id=_field(values, "CMPP_SRC_ID", 21, digits=True),
                   service_id=_field(values, "CMPP_SERVICE_ID", 10), version=pdu.VERSIONS[version],
                   max_connections=_whole(values, "CMPP_MAX_CONNECTIONS", 2, 1, 64))


def open_channel(config: ProviderConfig) -> CmppChannel:
    return CmppChannel(account_of(config.values), config.send_timeout)


PROVIDER = SmsProvider("cmpp", KEYS, open_channel)
