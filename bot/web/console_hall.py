"""The console's hall page (admins): each window's and terminal's rating device with its status (online: seen in
the last two minutes; offline; revoked), and each window's static QR code to print (Shantou art. 17 (三)).

Devices are registered and revoked through the API (POST /api/v1/hall/devices, …/revoke: docs/hall.md), which
hands the pairing link once; the page shows what is there and what each device last did.
"""

from __future__ import annotations

from aiohttp import web

from bot.web import console_auth, qr_codes
from bot.web.common import now
from bot.web.console import View
from bot.web.hall_devices import device_json
from bot.web.hall_windows import window_url
from store import hall

STATUS_KEYS = {"online": "console.hall_status.online", "offline": "console.hall_status.offline",
               "revoked": "console.hall_status.revoked"}


async def hall_page(request: web.Request) -> web.Response:
    who = await console_auth.require(request)
    view = View(request, who)
    title = view.t("console.hall")
    if who.user.role != "admin":
        return view.page("console_hall.html", title, "hall", http_status=403, devices=[],
                         error=view.t("console.not_your_role"))
    stamp = now(request)
    async with view.rt.db.read() as session:
        found = await hall.listed(session)
    devices = []
    for d in found:
        doc = device_json(view.rt, d, stamp)
        devices.append({**doc, "status_label": view.t(STATUS_KEYS[doc["status"]]), "seen": view.when(d.last_seen_at),
                        "qr": (f"/console/hall/qr?hall_code={d.hall_code}&window_no={d.window_no}"
                               if d.kind == "window" and d.window_no else None)})
    return view.page("console_hall.html", title, "hall", devices=devices)


async def window_qr(request: web.Request) -> web.Response:
    """A window's static code as SVG, to print from the browser (an admin's console session)."""
    who = await console_auth.require(request)
    if who.user.role != "admin":
        raise web.HTTPForbidden(text="admins only")
    view = View(request, who)
    hall_code, window_no = request.query.get("hall_code", "").strip(), request.query.get("window_no", "").strip()
    if not hall_code or not window_no:
        raise web.HTTPUnprocessableEntity(text="hall_code and window_no are required")
    return qr_codes.response(window_url(view.rt, hall_code, window_no), "svg", 10)


def setup(app: web.Application) -> None:
    app.router.add_get("/console/hall", hall_page)
    app.router.add_get("/console/hall/qr", window_qr)
