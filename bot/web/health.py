"""GET /healthz (what is down, by name) and GET /metrics (Prometheus text)."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress

from aiohttp import web

from bot.duties import official_calendar
from bot.infra.state import StateUnavailable
from bot.web.common import json_response, now, runtime


async def healthz(request: web.Request) -> web.Response:
    rt = runtime(request)
    report: dict[str, str] = {}
    try:
        async with asyncio.timeout(5):
            await rt.db.ping()
        report["database"] = "ok"
    except Exception as exc:  # any failure means "down"; the name of it helps the operator
        report["database"] = f"down: {type(exc).__name__}"
    if rt.settings.redis_url:
        try:
            async with asyncio.timeout(5):
                await rt.state.ping()
            report["redis"] = "ok"
        except (StateUnavailable, TimeoutError) as exc:
            report["redis"] = f"down: {type(exc).__name__}"
    else:
        report["redis"] = "not configured (in-process state)"
    provider = rt.sms_channel.health()  # a gateway kept connected (CMPP) says whether it is logged in
    if provider is not None:
        report[rt.sms_channel.name] = provider
    healthy = all(v == "ok" or v.startswith("not configured") for v in report.values())
    # A warning, not a failure: the service runs; what is due after an unknown year waits
    # (bot/duties/official_calendar.py).
    report["calendar"] = official_calendar.warning(rt, now(request)) or "ok"
    return json_response({"status": "ok" if healthy else "down", **report}, status=200 if healthy else 503)


def metrics_allowed(request: web.Request) -> bool:
    """HAOCHAPING_METRICS_ALLOW (addresses and networks; `*` for anyone) or HAOCHAPING_METRICS_TOKEN as a bearer
    token. Unset: this machine only. The address is the peer's: behind a proxy, the proxy's."""
    settings = runtime(request).settings
    token = settings.metrics_token
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    if "*" in settings.metrics_allow:
        return True
    try:
        peer = ipaddress.ip_address((request.remote or "").split("%")[0])
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(net, strict=False) for net in settings.metrics_allow)


async def metrics(request: web.Request) -> web.Response:
    if not metrics_allowed(request):
        raise web.HTTPForbidden(text="metrics: not from an allowed address (HAOCHAPING_METRICS_ALLOW) and no "
                                     "valid bearer token (HAOCHAPING_METRICS_TOKEN)")
    body = runtime(request).metrics.render()
    return web.Response(body=body, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
