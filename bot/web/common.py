"""What every handler shares: the runtime key, JSON answers, the bearer check, the clock."""

from __future__ import annotations

import hmac
import json
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from pydantic_core import from_json

from bot.infra.limits import MAX_ID
from bot.infra.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)
MIB = 1024 * 1024
BODY_LIMIT = MIB
BULK_LIMIT = 100 * MIB

_dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


# A request served for another runtime than the app's (the simulator's world serves its own rating page).
RUNTIME_OF_REQUEST = web.RequestKey("hcp_runtime", Runtime)


def runtime(request: web.Request) -> Runtime:
    return request.get(RUNTIME_OF_REQUEST) or request.app[RUNTIME]


# A request served at another instant than its runtime's clock says: the simulated instant of the simulator
# session that opened a simulated rating page (bot/web/simulator_page.py).
NOW_OF_REQUEST = web.RequestKey("hcp_now", datetime)


def now(request: web.Request) -> datetime:
    """The one place a request reads the clock; everything below takes the instant as an argument."""
    return request.get(NOW_OF_REQUEST) or runtime(request).clock()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps, headers=headers)


def error(status: int, message: str, **more: Any) -> web.Response:
    return json_response({"error": message, **more}, status=status)


def authorized(request: web.Request) -> bool:
    token = runtime(request).settings.api_token
    if not token:
        return False
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def require_token(request: web.Request) -> None:
    if not authorized(request):
        raise web.HTTPUnauthorized(
            text=_dumps({"error": "a valid bearer token is required (Authorization: Bearer …)"}),
            content_type="application/json", headers={"WWW-Authenticate": 'Bearer realm="haochaping"'})


async def read_json(request: web.Request) -> Any:
    # pydantic-core's parser bounds nesting itself (a ValueError), where json.loads would hit
    # Python's recursion limit on a body of "[[[[…".
    try:
        return from_json(await request.read())
    except ValueError as exc:
        raise web.HTTPBadRequest(text=_dumps({"error": f"the body is not JSON: {exc}"}),
                                 content_type="application/json") from None


def query_bool(request: web.Request, name: str, errors: list[dict[str, str]]) -> bool | None:
    """A query flag (`true`/`false`, `1`/`0`; absent or empty: None); anything else is one more of `errors`."""
    value = request.query.get(name)
    if value in (None, ""):
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    errors.append({"field": name, "message": "expected true or false"})
    return None


def query_after(request: web.Request, errors: list[dict[str, str]], what: str = "an id") -> int | None:
    """A list's keyset cursor (`after=<id>`): None when absent; beyond the store's ids it is an empty page."""
    raw = request.query.get("after")
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12):
        errors.append({"field": "after", "message": f"expected {what}"})
        return None
    return min(int(raw), MAX_ID)


def next_page(request: web.Request, last_id: int | None) -> str:
    """The same list's next page: the request's query, `after` the last id shown."""
    query = {k: v for k, v in request.query.items() if k != "after"}
    return f"{request.path}?{urlencode({**query, 'after': str(last_id)})}"
