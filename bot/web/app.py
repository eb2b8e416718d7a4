"""Assembling the application from its parts."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.delivery.sms_road import SmsRoad
from bot.infra.runtime import Runtime
from bot.web import (
    api,
    audit_api,
    console,
    console_hall,
    console_supervision,
    exports,
    freeswitch_hooks,
    hall_devices,
    hall_windows,
    health,
    home,
    hotline_api,
    intermediaries_api,
    middleware,
    miniprogram,
    pages,
    qr_codes,
    rating_page,
    signals_api,
    simulator_page,
    stats,
    twilio_hooks,
    wechat_hooks,
    work_orders_api,
)
from bot.web.common import BODY_LIMIT, RUNTIME
from bot.web.simulator import Simulator


def runner_options(rt: Runtime) -> dict[str, Any]:
    """How the server treats connections (bot/cli/main.py serve): headers must arrive within
    HAOCHAPING_HEADER_TIMEOUT of the connection or of the previous answer, after which aiohttp closes it
    (its keep-alive timer runs from the connection's start and closes a connection still waiting for a
    request); an idle kept-alive connection is closed after the same time. A body left unread after the
    answer (a 408, a 413) is drained for at most 10 s, or the body time-out when shorter, then the
    connection is closed."""
    return {"keepalive_timeout": rt.settings.header_timeout, "lingering_time": min(10.0, rt.settings.body_timeout)}


def build_app(rt: Runtime) -> web.Application:
    app = web.Application(
        client_max_size=BODY_LIMIT,
        middlewares=[middleware.forwarded, middleware.metrics, middleware.body_limit, middleware.errors,
                     middleware.inputs, middleware.body_deadline],
    )
    app[RUNTIME] = rt
    health.setup(app)
    api.setup(app)
    qr_codes.setup(app)  # the receipt's QR code (Shantou art. 17 (二))
    hall_devices.setup(app)  # the windows' rating devices and terminals' screens (art. 17 (一), 23)
    hall_windows.setup(app)  # a window's static QR code (art. 17 (三))
    work_orders_api.setup(app)
    intermediaries_api.setup(app)  # Hainan 中介服务 art. 21–25
    stats.setup(app)
    exports.setup(app)
    audit_api.setup(app)
    signals_api.setup(app)  # supervision: signals, supervisory calls (Haikou 九; Hainan art. 17)
    twilio_hooks.setup(app)
    freeswitch_hooks.setup(app)  # the same, driven by FreeSWITCH's mod_httapi
    hotline_api.setup(app)  # the keypad rating for any switch (CONTRACT "Hotline keypads beyond Twilio")
    rt.sms_channel.routes(app.router, SmsRoad(rt))  # the SMS provider's own webhooks
    rating_page.setup(app)
    pages.setup(app)
    home.setup(app)
    console.setup(app, rt)
    console_hall.setup(app)  # the hall's devices and windows' codes, for admins
    console_supervision.setup(app)  # the signals' queue and the supervisory calls
    if rt.simulator is None:
        rt.simulator = Simulator(rt)
    simulator_page.setup(app, rt.simulator)
    wechat_hooks.setup(app)
    miniprogram.setup(app)
    return app
