"""Middlewares: body limits before anything is read, errors as clear answers, request metrics."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.state import StateUnavailable
from bot.web.common import BODY_LIMIT, BULK_LIMIT, error, runtime

log = logging.getLogger("haochaping.web")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BULK_PATHS = frozenset({"/api/v1/cases:bulk"})


@web.middleware
async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse by Content-Length at once, before reading; chunked bodies are counted while read."""
    limit = BULK_LIMIT if request.path in BULK_PATHS else BODY_LIMIT
    if request.content_length is not None and request.content_length > limit:
        return error(413, f"the body is larger than {limit} bytes")
    return await handler(request)


def unavailable(message: str) -> web.Response:
    """503 with Retry-After: providers (Twilio, WeChat) retry later, so nothing is lost."""
    response = error(503, message)
    response.headers["Retry-After"] = "5"
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return error(413, "the body is larger than the limit for this endpoint")
    except web.HTTPException:
        raise
    except StateUnavailable as exc:
        log.error("session state unavailable: %s", exc)
        return unavailable("session state unavailable; retry later")
    except (OperationalError, DBAPIError, OSError) as exc:
        log.error("database unavailable: %s", type(exc).__name__)
        return unavailable("database unavailable; retry later")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error(500, "internal error")


@web.middleware
async def metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        runtime(request).metrics.http.labels(name, str(status)).inc()
