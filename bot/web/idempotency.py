"""`Idempotency-Key` on the rating endpoints (POST /api/v1/evaluations, POST /api/mp/v1/ratings).

A client that did not hear the answer sends the same request again with the same key; it gets the first
answer back (status and body) and nothing more is stored, even when both copies arrive together: the key's
lock in the state serializes them, and the answer is kept under the key for 24 hours. Keys belong to their
caller: per API token, per mini-program session. The same key with another body is 422, naming the header.

Only an answer that stored something (2xx) is kept: a refusal (4xx) or a failure (5xx) stored nothing, so
the same key may be sent again, corrected or later. Like every dedupe key (ARCHITECTURE invariant 1) the
answers live in the state and may be lost: a flushed Redis forgets them, and a repeat is then a new rating.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic_core import from_json

from bot.infra import keys
from bot.infra.state import StateUnavailable
from bot.web.common import error, json_response, runtime

log = logging.getLogger("haochaping.web")

HEADER = "Idempotency-Key"
KEY = re.compile(r"[A-Za-z0-9._:~+/=-]{1,128}")  # a UUID, a ULID, base64 or a business system's own ids
KEY_RULE = f"{HEADER} must be 1 to 128 characters of A-Z a-z 0-9 and . _ : ~ + / = -"
TTL = 24 * 3600


def scope_of(kind: str, credential: str) -> str:
    """Whose keys: `kind` and a digest of the credential that authenticated the request."""
    return f"{kind}:{hashlib.sha256(credential.encode()).hexdigest()[:16]}"


def _fingerprint(request: web.Request, body: bytes) -> str:
    """The request the key stands for: its path and its JSON (keys sorted), or its bytes when not JSON."""
    try:
        canonical = json.dumps(from_json(body), sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(request.path.encode() + b"\n" + canonical).hexdigest()


async def idempotent(request: web.Request, scope: str, produce: Callable[[], Awaitable[web.Response]]
                     ) -> web.Response:
    """`produce()`'s answer, or the answer a request with the same key got before."""
    given = request.headers.get(HEADER)
    if given is None:
        return await produce()
    if not KEY.fullmatch(given):
        return error(400, KEY_RULE)
    rt = runtime(request)
    fingerprint = _fingerprint(request, await request.read())
    name = keys.idempotency(scope, given)
    async with rt.state.lock(name):
        stored = await rt.state.get(name)
        if stored is not None:
            first = json.loads(stored)
            if not hmac.compare_digest(first["request"], fingerprint):
                return json_response({"errors": [{"field": HEADER, "message": (
                    f"this {HEADER} was used within 24 hours for a request with another body; "
                    "use a new key for a new request")}]}, status=422)
            answer = web.Response(body=first["body"].encode(), status=first["status"],
                                  content_type=first["content_type"], charset=first["charset"])
            answer.headers["Idempotent-Replayed"] = "true"
            return answer
        answer = await produce()
        if 200 <= answer.status < 300 and isinstance(answer.body, bytes):
            kept = {"request": fingerprint, "status": answer.status, "body": answer.body.decode(),
                    "content_type": answer.content_type, "charset": answer.charset or "utf-8"}
            try:
                await rt.state.put(name, json.dumps(kept, ensure_ascii=False), TTL)
            except StateUnavailable as exc:  # stored and answered; only a repeat would not be recognised
                log.warning("%s answer stored but not remembered: %s", HEADER, exc)
        return answer
