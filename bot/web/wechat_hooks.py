"""WeChat's callback (CONTRACT "Webhooks"): GET for the URL check, POST for messages.

The official account's messages are answered passively. WeChat waits 5 seconds, then retries; the
conversation is given 4, and when it takes longer the answer is "success" and the replies follow through
the customer-service message API, from the outbox. A mini-program's message push (消息推送, XML or
JSON, on the same URL) cannot be answered passively: it is always "success", then customer-service
messages through the mini-program's own API. Events other than a new follower are answered "success".

In plain mode WeChat's `signature` covers the token, timestamp and nonce, not the body: a signed query seen
once could carry another body inside the timestamp window. So the first body a signed query came with is
remembered for the window (SET NX in the state) and the query is refused with any other body; WeChat's own
retry (the same query, the same body) passes, and its MsgId dedupe answers it once. Safe mode needs none of
this: msg_signature covers the encrypted body.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import logging

from aiohttp import web
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.delivery import sender
from bot.inbound import conversation
from bot.infra import keys
from bot.infra.runtime import Runtime
from bot.infra.state import StateUnavailable
from bot.web.common import now, runtime
from channels.wechat.official import MAX_SKEW_SECONDS, Malformed, OfficialAccount, Refused
from dialogs.types import Inbound
from store import contacts, outbox
from store.models import OutboxMessage

log = logging.getLogger("haochaping.wechat")
ANSWER_WITHIN = 4.0
LATE_RETRIES = (0.5, 1, 2, 5, 10, 20, 30, 60)  # seconds between attempts at a message already answered
_late: set[asyncio.Task[None]] = set()  # replies still being sent after the answer went
# A plain-mode query is accepted while its timestamp is within ±MAX_SKEW_SECONDS of now: remembered for that
# whole window, and a minute more for the clocks of several workers that disagree a little.
SIGNED_QUERY_TTL = 2 * MAX_SKEW_SECONDS + 60


def _account(request: web.Request) -> OfficialAccount:
    account = runtime(request).wechat
    if account is None:
        raise web.HTTPNotFound(text="WeChat is not configured")
    return account


async def url_check(request: web.Request) -> web.Response:
    echo = _account(request).url_check(request.query)
    if echo is None:
        raise web.HTTPForbidden(text="invalid signature")
    return web.Response(text=echo, content_type="text/plain")


async def message(request: web.Request) -> web.Response:
    account = _account(request)
    rt = runtime(request)
    stamp = now(request)
    try:
        body = await request.read()
        inbound = account.open(request.query, body, stamp)
    except Refused as exc:
        raise web.HTTPForbidden(text=f"refused: {exc}") from None
    except Malformed as exc:
        raise web.HTTPBadRequest(text=f"malformed: {exc}") from None
    if account.crypto is None and not await _first_body_of_its_signature(rt, request.query["signature"], body):
        log.warning("WeChat plain-mode signature replayed with another body: refused")
        raise web.HTTPForbidden(text="refused: this signature came with another body")
    if inbound.kind == "event":
        return web.Response(text="success", content_type="text/plain")
    if inbound.message is not None and account.crypto is None and await _a_mini_program_user(rt, inbound.openid):
        inbound = dataclasses.replace(inbound, app="miniprogram", message=None)
    neutral = Inbound(channel=inbound.app, address=inbound.openid, text=inbound.text,
                      message_id=inbound.dedupe_id, received_at=stamp, kind=inbound.kind)
    work = asyncio.ensure_future(conversation.handle(rt, neutral, inbound.app))
    if inbound.message is None:  # a mini-program: no passive reply
        _answer_later(rt, work, neutral)
        return web.Response(text="success", content_type="text/plain")
    try:
        answer = await asyncio.wait_for(asyncio.shield(work), ANSWER_WITHIN)
    except TimeoutError:
        _answer_later(rt, work, neutral)
        return web.Response(text="success", content_type="text/plain")
    if answer.duplicate or not answer.texts:
        return web.Response(text="success", content_type="text/plain")
    xml = account.reply(inbound, answer.texts, request.query.get("nonce", ""), request.query.get("timestamp", ""))
    return web.Response(text=xml, content_type="text/xml", charset="utf-8")


async def _first_body_of_its_signature(rt: Runtime, signature: str, body: bytes) -> bool:
    """Plain mode: whether the body is the one this signed query first came with (StateUnavailable: 503).

    Keyed by the signature (checked by now: 40 hex digits) rather than the timestamp and nonce it covers:
    WeChat signs them sorted and joined, so the same signature also holds for the two swapped.
    """
    digest = hashlib.sha256(body).hexdigest()
    first = await rt.state.claim(keys.wechat_signed(signature), digest, SIGNED_QUERY_TTL)
    return first is None or hmac.compare_digest(first, digest)


async def _a_mini_program_user(rt: Runtime, openid: str) -> bool:
    """In plain mode an XML push carries nothing that tells a mini-program's from the official account's (but
    their own gh_ ids, which are not configured): the openid tells, being known to one and not the other."""
    if rt.mp_api is None:
        return False
    async with rt.db.read() as session:
        if await contacts.find(session, "wechat", rt.sealer.lookup_hashes("wechat", openid)) is not None:
            return False
        return await contacts.find(session, "miniprogram", rt.sealer.lookup_hashes("miniprogram", openid)) is not None


def _answer_later(rt: Runtime, work: asyncio.Future[conversation.Answer], inbound: Inbound) -> None:
    late = asyncio.ensure_future(_send_later(rt, work, inbound))
    _late.add(late)
    late.add_done_callback(_late.discard)


async def _send_later(rt: Runtime, work: asyncio.Future[conversation.Answer], inbound: Inbound) -> None:
    """The conversation outran WeChat's patience: its replies go as customer-service messages.

    WeChat never sends again a message it was answered "success" for, so a passing failure (Redis or
    the database away) is retried here until it is acted on, or given up and logged after ~2 minutes.
    """
    stamp = inbound.received_at
    try:
        for pause in (*LATE_RETRIES, None):
            try:
                answer = await work
                break
            except (StateUnavailable, OperationalError, DBAPIError, PoolTimeout, OSError) as exc:
                if pause is None:
                    raise
                log.warning("WeChat message %s not acted on yet (%s); again in %g s", inbound.message_id,
                            type(exc).__name__, pause)
                await asyncio.sleep(pause)
                work = asyncio.ensure_future(conversation.handle(rt, inbound, inbound.channel))
        if answer.duplicate or not answer.texts or answer.contact_id is None:
            return
        # One message holding every reply, as the passive reply does: rows sent side by side could arrive
        # in any order (the menu before the apology).
        async with rt.db.write() as session:
            await outbox.enqueue(session, OutboxMessage(
                kind="reply", channel=inbound.channel, contact_id=answer.contact_id, body="\n\n".join(answer.texts),
                status="pending", next_attempt_at=stamp, created_at=stamp, updated_at=stamp, provider="wechat"))
        await sender.deliver_due(rt, stamp, only_kinds=("reply",))
    except Exception:
        log.exception("late WeChat reply failed")


def setup(app: web.Application) -> None:
    app.router.add_get("/webhooks/wechat", url_check)
    app.router.add_post("/webhooks/wechat", message)
