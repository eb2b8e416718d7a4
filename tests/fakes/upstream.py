"""A local stand-in for a provincial 好差评 platform's report endpoint: an aiohttp server on 127.0.0.1.

Why a server and not a mock: the pusher's whole risk is at the HTTP seam (authentication, the
idempotency key, time-outs, status codes), so the tests cross a real socket, as with FakeTwilio.

What it does, as an upstream that dedupes by key would:

* checks the authentication it was given (``auth=("bearer", token)``, ``("basic", user, password)``,
  ``("hmac", secret, header)``, ``("header", name, value)`` or None) and answers 401 otherwise;
* keeps the first body of each ``Idempotency-Key`` in ``accepted`` (in arrival order) and counts every
  repeat of a key it already holds in ``duplicates``; a repeat is answered ``duplicate_status`` (200 as
  most idempotent APIs do, or 409 to say "already have it");
* records every request, answered or not, in ``requests``.

Failure injection: ``fail_next(n, status=500)`` (answered, nothing kept), ``hang_next(n)`` (the body is
kept, as an upstream that did its work and then lost the answer, and the answer never comes within the
client's time-out), ``stop_listening()`` / ``listen_again()`` (connections refused, then the same port).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any

from aiohttp import web


class FakeUpstream:
    def __init__(self, auth: tuple[str, ...] | None = None, path: str = "/api/haochaping/report",
                 duplicate_status: int = 200) -> None:
        self.auth = auth
        self.path = path
        self.duplicate_status = duplicate_status
        self.delay = 0.0  # seconds each answer takes (real time), so that concurrent pushers overlap
        # The bodies of a kept record's answer and of a repeat's: a platform that answers 200 to everything
        # says in them whether it took the record ({"code": "0"}, {"code": "1001", "msg": "重复上报"}).
        self.kept_body: dict[str, Any] = {"ok": True}
        self.duplicate_body: dict[str, Any] = {"ok": True, "duplicate": True}
        self.accepted: list[dict[str, Any]] = []  # {"key", "body", "headers"} of each key's first arrival
        self.duplicates: list[str] = []  # keys received again after they were kept
        self.requests: list[dict[str, Any]] = []  # {"key", "status", "body"} of every request
        self._keys: set[str] = set()
        self._script: list[tuple[str, int, str]] = []  # ("fail" | "hang", status, body)
        self._hanging = 0
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._port = 0

    # --- lifecycle --------------------------------------------------------------------------------------

    async def start(self) -> FakeUpstream:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await self.listen_again()
        return self

    async def listen_again(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self._port, reuse_address=True)
        await self._site.start()
        self._port = self._runner.addresses[-1][1]

    async def stop_listening(self) -> None:
        """Connections are refused until listen_again() (on the same port)."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}{self.path}"

    @property
    def hanging(self) -> int:
        return self._hanging

    # --- failure injection ------------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 500, body: str = "upstream unavailable") -> None:
        self._script.extend([("fail", status, body)] * n)

    def recover(self) -> None:
        """Forget the failures still scheduled: every request is answered normally from now on."""
        self._script.clear()

    def hang_next(self, n: int) -> None:
        self._script.extend([("hang", 0, "")] * n)

    # --- what the tests read ------------------------------------------------------------------------------

    def bodies(self) -> list[dict[str, Any]]:
        return [a["body"] for a in self.accepted]

    def keys(self) -> list[str]:
        return [a["key"] for a in self.accepted]

    # --- the endpoint -------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        key = request.headers.get("Idempotency-Key", "")
        entry: dict[str, Any] = {"key": key, "status": None, "raw": raw, "headers": dict(request.headers)}
        self.requests.append(entry)
        response = await self._answer(request, raw, key)
        entry["status"] = response.status
        return response

    async def _answer(self, request: web.Request, raw: bytes, key: str) -> web.Response:
        if request.method != "POST" or request.path != self.path:
            return web.json_response({"error": "not found"}, status=404)
        if not self._authorized(request, raw):
            return web.json_response({"error": "unauthorized"}, status=401)
        if not request.content_type == "application/json" or request.charset not in (None, "utf-8"):
            return web.json_response({"error": "expected application/json; charset=utf-8"}, status=415)
        if not key:
            return web.json_response({"error": "Idempotency-Key header required"}, status=400)
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            return web.json_response({"error": "not JSON"}, status=400)
        if self.delay:
            await asyncio.sleep(self.delay)
        step = self._script.pop(0) if self._script else None
        if step is not None and step[0] == "fail":
            return web.Response(status=step[1], text=step[2])
        if key in self._keys:
            self.duplicates.append(key)
            return web.json_response(self.duplicate_body, status=self.duplicate_status)
        self._keys.add(key)
        self.accepted.append({"key": key, "body": body, "headers": dict(request.headers)})
        if step is not None and step[0] == "hang":  # kept, but the answer never comes in time
            self._hanging += 1
            try:
                await self._closing.wait()
            finally:
                self._hanging -= 1
            return web.json_response({"error": "closing"}, status=503)
        return web.json_response(self.kept_body)

    def _authorized(self, request: web.Request, raw: bytes) -> bool:
        if self.auth is None:
            return True
        kind, *args = self.auth
        given = request.headers.get("Authorization", "")
        if kind == "bearer":
            return hmac.compare_digest(given, f"Bearer {args[0]}")
        if kind == "basic":
            expected = "Basic " + base64.b64encode(f"{args[0]}:{args[1]}".encode()).decode()
            return hmac.compare_digest(given, expected)
        if kind == "hmac":
            secret, header = args
            stamp = request.headers.get("X-Timestamp", "")
            digest = hmac.new(secret.encode(), stamp.encode() + b"\n" + raw, hashlib.sha256).hexdigest()
            return bool(stamp) and hmac.compare_digest(request.headers.get(header, ""), digest)
        if kind == "header":
            name, value = args
            return hmac.compare_digest(request.headers.get(name, ""), value)
        raise AssertionError(f"unknown auth kind {kind!r}")
