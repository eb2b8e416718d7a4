"""Assembling the application from its parts."""

from __future__ import annotations

from aiohttp import web

from bot.runtime import Runtime
from bot.simulator import Simulator
from bot.web import (
    api,
    console,
    exports,
    health,
    middleware,
    miniprogram,
    pages,
    rating_page,
    simulator_page,
    stats,
    twilio_hooks,
    wechat_hooks,
    work_orders_api,
)
from bot.web.common import BODY_LIMIT, RUNTIME


def build_app(rt: Runtime) -> web.Application:
    app = web.Application(
        client_max_size=BODY_LIMIT,
        middlewares=[middleware.metrics, middleware.body_limit, middleware.errors],
    )
    app[RUNTIME] = rt
    health.setup(app)
    api.setup(app)
    work_orders_api.setup(app)
    stats.setup(app)
    exports.setup(app)
    twilio_hooks.setup(app)
    rating_page.setup(app)
    pages.setup(app)
    console.setup(app, rt)
    if rt.simulator is None:
        rt.simulator = Simulator(rt)
    simulator_page.setup(app, rt.simulator)
    wechat_hooks.setup(app)
    miniprogram.setup(app)
    return app
