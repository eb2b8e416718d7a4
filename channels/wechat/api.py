"""WeChat's server API (official account and mini-program): access tokens, customer-service messages,
subscribe messages, and the mini-program login.

wechatpy's client does the calls; it is synchronous, so every call runs in a thread and never
blocks the event loop. Its own token handling is switched off (`auto_retry=False`, a token handed
in): the application shares one token among all its processes through a `TokenStore` (Redis, with a
lock so that only one process refreshes it, because a refresh invalidates the token the others hold).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from channels.base import Failed, Retry, SendResult, Sent, Stopped

log = logging.getLogger("haochaping.wechat")

T = TypeVar("T")
WECHAT = "https://api.weixin.qq.com"
EXPIRED_TOKEN = frozenset({40001, 40014, 42001})
REFUSED = 43101  # the person did not subscribe (or used up their one-time subscription)
RETRYABLE = frozenset({-1, 45009, 45011, 45047})  # system busy, rate limits
TIMEOUT = 10
# Subscribe-message fields are typed by their name's prefix, and WeChat refuses (47003) a value too long.
FIELD_LIMITS = {"thing": 20, "name": 10, "phrase": 5, "character_string": 32, "number": 32, "letter": 32,
                "symbol": 5}


def fit_field(field: str, value: str) -> str:
    limit = FIELD_LIMITS.get(field.rstrip("0123456789"))
    return value[:limit] if limit else value


class TokenStore(Protocol):
    async def get(self, key: str) -> str | None: ...
    async def put(self, key: str, token: str, ttl: int) -> None: ...
    async def drop(self, key: str, token: str) -> None: ...
    def refresh_lock(self, key: str) -> AbstractAsyncContextManager[None]: ...


class _Client(WeChatClient):
    """wechatpy's client with every URL under a configurable base (WECHAT_API_BASE_URL)."""

    def __init__(self, base: str, appid: str, secret: str, access_token: str | None = None) -> None:
        super().__init__(appid, secret, access_token=access_token, timeout=TIMEOUT, auto_retry=False)
        self.base = base
        self.API_BASE_URL = f"{base}/cgi-bin/"
        self.wxa.API_BASE_URL = f"{base}/"

    def fetch_access_token(self) -> dict[str, Any]:
        return self._fetch_access_token(url=f"{self.base}/cgi-bin/token", params={
            "grant_type": "client_credential", "appid": self.appid, "secret": self.secret})


class WeChatApi:
    def __init__(self, app_id: str, secret: str, tokens: TokenStore, base_url: str | None = None) -> None:
        self.app_id = app_id
        self.secret = secret
        self.tokens = tokens
        self.base = (base_url or WECHAT).rstrip("/")
        self.key = f"wechat-token:{app_id}"

    async def token(self) -> str:
        found = await self.tokens.get(self.key)
        if found:
            return found
        async with self.tokens.refresh_lock(self.key):
            found = await self.tokens.get(self.key)  # another process may have refreshed meanwhile
            if found:
                return found
            result = await asyncio.to_thread(_Client(self.base, self.app_id, self.secret).fetch_access_token)
            token = str(result["access_token"])
            ttl = max(int(result.get("expires_in", 7200)) - 300, 60)
            await self.tokens.put(self.key, token, ttl)
            log.info("wechat access token fetched for %s", self.app_id)
            return token

    async def call(self, fn: Callable[[WeChatClient], T]) -> T:
        """Run `fn(client)` in a thread; an expired token is dropped and fetched again, once."""
        for attempt in (1, 2):
            token = await self.token()
            client = _Client(self.base, self.app_id, self.secret, access_token=token)
            try:
                return await asyncio.to_thread(fn, client)
            except WeChatClientException as exc:
                if exc.errcode in EXPIRED_TOKEN and attempt == 1:
                    await self.tokens.drop(self.key, token)
                    continue
                raise
        raise AssertionError("unreachable")

    async def _send(self, fn: Callable[[WeChatClient], Any]) -> SendResult:
        try:
            await self.call(fn)
        except WeChatClientException as exc:
            text = f"wechat {exc.errcode}: {exc.errmsg}"
            if exc.errcode == REFUSED:
                return Stopped(text)
            if exc.errcode is None or exc.errcode in RETRYABLE or exc.errcode in EXPIRED_TOKEN:
                return Retry(text)
            return Failed(text)
        except (requests.RequestException, OSError, TimeoutError) as exc:
            return Retry(f"{type(exc).__name__}: {exc}")
        return Sent("WX" + secrets.token_hex(12))  # WeChat gives these sends no message id

    async def send_text(self, openid: str, text: str) -> SendResult:
        """A customer-service message, within 48 h of the person's last message: the official account's, or a
        mini-program's (the same API under its own token, cgi-bin/message/custom/send)."""
        return await self._send(lambda c: c.message.send_text(openid, text))

    async def send_subscribe(self, openid: str, template_id: str, page: str | None,
                             data: dict[str, dict[str, str]]) -> SendResult:
        """A mini-program subscribe message (one per authorisation the person gave); values cut to fit."""
        fitted = {f: {**v, "value": fit_field(f, str(v.get("value", "")))} for f, v in data.items()}
        return await self._send(lambda c: c.wxa.send_subscribe_message(openid, template_id, fitted, page=page))

    async def code_to_session(self, code: str) -> dict[str, Any]:
        return await self.call(lambda c: c.wxa.code_to_session(code))
