"""Middlewares: body limits before anything is read, errors as clear answers, request metrics."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.infra.limits import code_problem
from bot.infra.state import StateUnavailable
from bot.web.common import BODY_LIMIT, BULK_LIMIT, error, json_response, runtime

log = logging.getLogger("haochaping.web")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BULK_PATHS = frozenset({"/api/v1/cases:bulk"})


@web.middleware
async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The client's address behind a reverse proxy: taken from X-Forwarded-For only when the peer is one of
    HAOCHAPING_TRUSTED_PROXIES, and then the right-most address that is not a trusted proxy (the left ones are
    whatever the client wrote). From anyone else the header is ignored: a client cannot choose the address the
    log-in throttle, the audit table and the supervision signals see."""
    trusted = runtime(request).settings.trusted_proxies
    if not trusted or "X-Forwarded-For" not in request.headers or not _within(request.remote, trusted):
        return await handler(request)
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For")).split(",")]
    for hop in reversed(hops):
        try:
            address = str(ipaddress.ip_address(hop))
        except ValueError:
            break  # garbage in the chain: nothing left of it is believed
        if not _within(address, trusted):
            return await handler(request.clone(remote=address))
    return await handler(request)


def _within(address: str | None, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)


@web.middleware
async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse by Content-Length at once, before reading; chunked bodies are counted while read."""
    limit = BULK_LIMIT if request.path in BULK_PATHS else BODY_LIMIT
    if request.content_length is not None and request.content_length > limit:
        return error(413, f"the body is larger than {limit} bytes")
    return await handler(request)


@web.middleware
async def body_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The whole body must arrive within HAOCHAPING_BODY_TIMEOUT: it is read here, in time or not at all, and
    kept for the handler (request.read/post/json use it). The bulk endpoint streams its body instead and
    drops a sender that stalls (bot/web/ndjson.py)."""
    if request.body_exists and request.path not in BULK_PATHS:
        timeout = runtime(request).settings.body_timeout
        try:
            async with asyncio.timeout(timeout):
                await request.read()
        except TimeoutError:
            response = error(408, f"the body did not arrive within {timeout:g} s")
            response.force_close()
            return response
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
    except PoolTimeout:  # every pooled connection stayed busy for HAOCHAPING_DB_POOL_TIMEOUT: a burst, or a stall
        log.error("database busy: no connection free within the pool timeout")
        return unavailable("database busy; retry later")
    except asyncio.CancelledError:  # the test server (handler_cancellation) cancels the handler of a lost client
        if client_gone(request):
            log.info("client went away during %s %s", request.method, request.path)
        raise
    except Exception as exc:
        if client_gone(request):  # whatever failed after (the body's read, a query cut short): not an outage
            log.info("client went away during %s %s (%s)", request.method, request.path, type(exc).__name__)
            return web.Response(status=CLIENT_GONE)
        if isinstance(exc, DBAPIError) and not outage(exc):
            return _refused_by_store(request, exc)
        if isinstance(exc, (DBAPIError, OSError)):
            log.error("database unavailable: %s", type(exc).__name__)
            return unavailable("database unavailable; retry later")
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error(500, "internal error")


CLIENT_GONE = 499  # nginx's "client closed request": counted in the metrics, never sent
# SQLSTATE classes of an outage: connection exception, insufficient resources (too many clients), operator
# intervention (shutdown, cannot connect now), system error. SQLite's: busy, locked, I/O error, full,
# cannot open, protocol.
_OUTAGE_SQLSTATES = ("08", "53", "57", "58")
_SQLITE_OUTAGES = frozenset({5, 6, 10, 13, 14, 15})


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _causes(exc: BaseException | None) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and len(out) < 8 and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def outage(exc: DBAPIError) -> bool:
    """Whether a database error is the database being away (503, retry) rather than what was asked of it
    (a value it cannot hold, a conflict, a bug): a lost or refused connection, a server that cannot serve."""
    if exc.connection_invalidated:
        return True
    for err in _causes(exc.orig):
        if isinstance(err, OSError):
            return True
        names = {t.__name__ for t in type(err).__mro__}
        if names & {"DataError", "IntegrityError"}:  # asyncpg's own (a value out of int32 range): the input's
            return False
        if "ConnectionDoesNotExistError" in names or "connection is closed" in str(err):
            return True
        state = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if isinstance(state, str) and state:
            return state[:2] in _OUTAGE_SQLSTATES
        code = getattr(err, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF in _SQLITE_OUTAGES
    # a driver that says nothing more: its OperationalError and InterfaceError are taken as an outage
    return isinstance(exc, (OperationalError, InterfaceError))


def _refused_by_store(request: web.Request, exc: DBAPIError) -> web.Response:
    """A database error the request caused (a value the store cannot hold: 422; a conflict with a stored row:
    409), or a bug (500). Never 503: a client must not retry for ever what will always fail."""
    states = [s for e in _causes(exc.orig) if isinstance(s := getattr(e, "sqlstate", None), str) and s]
    names = {t.__name__ for e in _causes(exc.orig) for t in type(e).__mro__}
    if isinstance(exc, IntegrityError) or any(s.startswith("23") for s in states):
        log.warning("%s %s: the store refused a conflicting row (%s)", request.method, request.path,
                    type(exc.orig).__name__)
        return error(409, "the request conflicts with what is stored")
    if "DataError" in names or any(s.startswith("22") for s in states):
        log.warning("%s %s: the store refused a value (%s)", request.method, request.path, type(exc.orig).__name__)
        return error(422, "a value of the request is outside what the store can hold")
    log.exception("unhandled database error on %s %s", request.method, request.path)
    return error(500, "internal error")


@web.middleware
async def inputs(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Ids, codes and names in the path and the query: a control character in one names nothing (404 for
    a path, 422 naming the parameter for a query) and never reaches a handler, a query or a log line."""
    for value in request.match_info.values():
        if code_problem(value):
            log.info("refused %s %s: a control character in the path", request.method, request.path)
            raise web.HTTPNotFound(text='{"error":"not found"}', content_type="application/json")
    bad = [name for name, value in request.query.items() if code_problem(name) or code_problem(value)]
    if bad:
        log.info("refused %s %s: a control character in the query %s", request.method, request.path,
                 "; ".join(f"{k}={v}" for k, v in request.query.items() if k in bad))
        return json_response({"errors": [{"field": name, "message": code_problem(request.query[name])
                                          or "control characters are not accepted"} for name in dict.fromkeys(bad)]},
                             422)
    return await handler(request)


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
    except asyncio.CancelledError:
        status = CLIENT_GONE if client_gone(request) else 500
        raise
    finally:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        runtime(request).metrics.http.labels(name, str(status)).inc()
