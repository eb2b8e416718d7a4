"""WeChat's callback protocol: URL check, signed (and in safe mode, encrypted) messages, passive replies.

The official account posts XML; a mini-program's 消息推送 posts XML or JSON (its data format is a
setting), to the same URL when it is configured with the same Token and EncodingAESKey. In safe
mode the AppId sealed inside the message says whose it is; in plain mode only a mini-program can
send JSON. Every message type is read: text, voice (with WeChat's speech recognition, as text),
pictures, locations, links and the like (kind "media": answered with a polite prompt), and events.

wechatpy does the protocol (signatures, AES, message classes, reply XML). Before any XML reaches it
(or xmltodict inside it), defusedxml reads the body with DTDs, entities and external references
forbidden: an XXE or "billion laughs" body is refused, not expanded. Sources of the payloads the
tests replay: tests/payloads/wechat/SOURCES.md.
"""

from __future__ import annotations

import json
import struct
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


# Message types that carry no words we can read (a voice message does, when WeChat recognised it).
MEDIA_TYPES = frozenset({"image", "voice", "video", "shortvideo", "location", "link", "file", "miniprogrampage",
                         "music", "news"})


@dataclass(frozen=True, slots=True)
class InboundWeChat:
    openid: str
    # "text" (a voice message WeChat recognised is text too), "subscribe", "media" (a picture, a voice
    # without recognition, a location, a link …: answered with a polite prompt), or "event" (answered
    # "success" and nothing else).
    kind: str
    text: str
    dedupe_id: str
    app: str  # "wechat" (the official account) or "miniprogram" (a mini-program's message push)
    message: BaseMessage | None = None  # wechatpy's message, for a passive reply (official account only)


def signature_ok(token: str, signature: str | None, timestamp: str | None, nonce: str | None) -> bool:
    if not (signature and timestamp and nonce):
        return False
    try:
        check_signature(token, signature, timestamp, nonce)
        return True
    except InvalidSignatureException:
        return False


def safe_xml(body: bytes | str) -> dict[str, object]:
    """The top-level fields of a WeChat XML document, read with every DTD and entity refused."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, SafeET.ParseError, ValueError) as exc:
        raise Malformed(f"unreadable or unsafe XML: {type(exc).__name__}") from None
    if root.tag != "xml":
        raise Malformed("the document is not a WeChat <xml> message")
    return {child.tag: (child.text or "") for child in root}


class OfficialAccount:
    """The callback of the official account, and of a mini-program whose 消息推送 is pointed at the same URL
    with the same Token and EncodingAESKey (XML or JSON; in safe mode the AppId inside tells them apart)."""

    def __init__(self, token: str, aes_key: str | None, app_id: str | None, mp_app_id: str | None = None) -> None:
        self.token = token
        self.crypto = WeChatCrypto(token, aes_key, app_id or "") if aes_key else None
        self.mp_crypto = WeChatCrypto(token, aes_key, mp_app_id) if aes_key and mp_app_id else None

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
        is_json = body.lstrip()[:1] == b"{"
        outer = safe_json(body) if is_json else safe_xml(body)
        app = "miniprogram" if is_json else "wechat"  # only a mini-program's push can be JSON
        if self.crypto is not None:
            if query.get("encrypt_type") != "aes" or not isinstance(outer.get("Encrypt"), str):
                raise Refused("safe mode: plain messages are refused")
            plain, app = self._decrypt(str(outer["Encrypt"]), query.get("msg_signature") or "", timestamp, nonce)
            is_json = plain.lstrip()[:1] == "{"
            fields = safe_json(plain.encode()) if is_json else safe_xml(plain)
            xml: bytes | str = plain
        else:
            fields, xml = outer, body
        sender, msg_type = fields.get("FromUserName"), fields.get("MsgType")
        if not isinstance(sender, str) or not sender or not isinstance(msg_type, str) or not msg_type:
            raise Malformed("no FromUserName or MsgType")
        kind, text = _kind(fields)
        dedupe = fields.get("MsgId")
        dedupe = str(dedupe) if dedupe not in (None, "") else f"{sender}:{fields.get('CreateTime', '')}"
        message = parse_message(xml) if not is_json and app == "wechat" else None
        return InboundWeChat(openid=sender, kind=kind, text=text, dedupe_id=dedupe, app=app, message=message)

    def _decrypt(self, encrypt: str, msg_signature: str, timestamp: str | None, nonce: str | None) -> tuple[str, str]:
        """The plaintext, and whose it is: the official account's AppId, or else the mini-program's."""
        assert self.crypto is not None
        for crypto, app in ((self.crypto, "wechat"), (self.mp_crypto, "miniprogram")):
            if crypto is None:
                continue
            try:
                return crypto.decrypt_message({"Encrypt": encrypt}, msg_signature, timestamp, nonce), app
            except InvalidSignatureException:
                raise Refused("bad msg_signature") from None
            except InvalidAppIdException:
                continue
            except (ValueError, UnicodeDecodeError, TypeError, IndexError, struct.error) as exc:
                raise Malformed(f"cannot decrypt: {type(exc).__name__}") from None
        raise Malformed("cannot decrypt: the AppId inside is neither the official account's nor the mini-program's")

    def reply(self, inbound: InboundWeChat, texts: Sequence[str], nonce: str, timestamp: str) -> str:
        """One passive reply holding every text (WeChat takes one), encrypted in safe mode."""
        assert inbound.message is not None, "only the official account takes passive replies"
        xml = TextReply(message=inbound.message, content="\n\n".join(texts)).render()
        if self.crypto is not None:
            return self.crypto.encrypt_message(xml, nonce, timestamp)
        return xml


def safe_json(body: bytes) -> dict[str, object]:
    """A JSON message push (a mini-program's 消息推送 set to JSON): one object."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed(f"unreadable JSON: {type(exc).__name__}") from None
    if not isinstance(doc, dict):
        raise Malformed("the JSON message is not an object")
    return doc


def _kind(fields: Mapping[str, object]) -> tuple[str, str]:
    """What the message is to the dialog, and its words."""
    msg_type = str(fields.get("MsgType") or "").lower()
    if msg_type == "text":
        return "text", _text(fields.get("Content"))
    if msg_type == "voice":
        heard = _text(fields.get("Recognition")).strip()
        return ("text", heard) if heard else ("media", "")
    if msg_type == "event":
        event = str(fields.get("Event") or "").lower()
        return ("subscribe" if event == "subscribe" else "event"), ""
    return ("media" if msg_type in MEDIA_TYPES else "event"), ""


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
