"""GET /healthz (what is down, by name) and GET /metrics (Prometheus text)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.state import StateUnavailable
from bot.web.common import json_response, runtime


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
    healthy = all(v == "ok" or v.startswith("not configured") for v in report.values())
    return json_response({"status": "ok" if healthy else "down", **report}, status=200 if healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    body = runtime(request).metrics.render()
    return web.Response(body=body, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
