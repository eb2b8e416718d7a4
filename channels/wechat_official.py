"""The WeChat official account's callback protocol: URL check, signed (and in safe mode, encrypted)
XML messages, and passive replies.

wechatpy does the protocol (signatures, AES, message classes, reply XML). Before any XML reaches it
(or xmltodict inside it), defusedxml reads the body with DTDs, entities and external references
forbidden: an XXE or "billion laughs" body is refused, not expanded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.messages import BaseMessage
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

# WeChat retries a callback three times within ~15 s; an older timestamp is a replay.
MAX_SKEW_SECONDS = 300


class Refused(Exception):
    """403: the request is not from WeChat (signature, mode, or a stale timestamp)."""


class Malformed(Exception):
    """400: the body is not a WeChat message we can read safely."""


@dataclass(frozen=True, slots=True)
class InboundWeChat:
    openid: str
    kind: str  # "text", "subscribe", or "other" (images, voice, other events: answered politely)
    text: str
    dedupe_id: str
    message: BaseMessage


def signature_ok(token: str, signature: str | None, timestamp: str | None, nonce: str | None) -> bool:
    if not (signature and timestamp and nonce):
        return False
    try:
        check_signature(token, signature, timestamp, nonce)
        return True
    except InvalidSignatureException:
        return False


def safe_xml(body: bytes | str) -> dict[str, str]:
    """The top-level fields of a WeChat XML document, read with every DTD and entity refused."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, SafeET.ParseError, ValueError) as exc:
        raise Malformed(f"unreadable or unsafe XML: {type(exc).__name__}") from None
    if root.tag != "xml":
        raise Malformed("the document is not a WeChat <xml> message")
    return {child.tag: (child.text or "") for child in root}


class OfficialAccount:
    def __init__(self, token: str, aes_key: str | None, app_id: str | None) -> None:
        self.token = token
        self.crypto = WeChatCrypto(token, aes_key, app_id or "") if aes_key else None

    def url_check(self, query: Mapping[str, str]) -> str | None:
        """The echostr to answer, or None when the signature is wrong."""
        if signature_ok(self.token, query.get("signature"), query.get("timestamp"), query.get("nonce")):
            return query.get("echostr") or ""
        return None

    def open(self, query: Mapping[str, str], body: bytes, now: datetime) -> InboundWeChat:
        timestamp, nonce = query.get("timestamp"), query.get("nonce")
        if not signature_ok(self.token, query.get("signature"), timestamp, nonce):
            raise Refused("bad signature")
        try:
            skew = abs(now.timestamp() - int(timestamp or ""))
        except ValueError:
            raise Refused("bad timestamp") from None
        if skew > MAX_SKEW_SECONDS:
            raise Refused("stale timestamp")
        outer = safe_xml(body)
        if self.crypto is not None:
            if query.get("encrypt_type") != "aes" or "Encrypt" not in outer:
                raise Refused("safe mode: plain messages are refused")
            try:
                plain = self.crypto.decrypt_message(
                    {"Encrypt": outer["Encrypt"]}, query.get("msg_signature") or "", timestamp, nonce)
            except InvalidSignatureException:
                raise Refused("bad msg_signature") from None
            except (InvalidAppIdException, ValueError, UnicodeDecodeError) as exc:
                raise Malformed(f"cannot decrypt: {type(exc).__name__}") from None
            fields = safe_xml(plain)
            xml = plain
        else:
            fields, xml = outer, body
        if not fields.get("FromUserName") or not fields.get("MsgType"):
            raise Malformed("no FromUserName or MsgType")
        message = parse_message(xml)
        kind = {"text": "text"}.get(message.type, "other")
        if message.type == "event" and getattr(message, "event", "").startswith("subscribe"):
            kind = "subscribe"
        dedupe = fields.get("MsgId") or f"{fields['FromUserName']}:{fields.get('CreateTime', '')}"
        return InboundWeChat(openid=message.source, kind=kind, text=getattr(message, "content", "") or "",
                             dedupe_id=dedupe, message=message)

    def reply(self, inbound: InboundWeChat, texts: Sequence[str], nonce: str, timestamp: str) -> str:
        """One passive reply holding every text (WeChat takes one), encrypted in safe mode."""
        xml = TextReply(message=inbound.message, content="\n\n".join(texts)).render()
        if self.crypto is not None:
            return self.crypto.encrypt_message(xml, nonce, timestamp)
        return xml
