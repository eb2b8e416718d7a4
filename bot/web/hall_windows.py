"""A window's static QR code (Shantou art. 17 (三)), where neither a device nor a receipt's code is possible.

The code holds `PUBLIC_URL/hall/w/<hall>/<window>/<signature>`, signed with a key of its own (derived from the
secret key) so that nobody makes one for a window of their choosing. Scanning it opens a page that lists the
window's cases completed in the last hour, masked (the item, the case number's ends, the applicant's masked name,
the time), and the person picks theirs: its rating page opens (channel `qr`), naming the window and the clerk.

    GET /api/v1/hall/windows/qr?hall_code=&window_no=&format=png|svg&scale=  (bearer token) → the code to print
    GET /hall/w/{hall}/{window}/{signature}                                  → the window's last hour
"""

from __future__ import annotations

import base64
import hmac
from datetime import timedelta
from urllib.parse import quote

from aiohttp import web

from bot.infra.i18n import local_time
from bot.infra.runtime import Runtime
from bot.web import pages, qr_codes
from bot.web.common import json_response, now, require_token, runtime
from store import hall

WINDOW = timedelta(hours=1)


def signature(rt: Runtime, hall_code: str, window_no: str) -> str:
    digest = rt.sealer.mac(rt.sealer.subkey("window-codes"), f"{hall_code}\n{window_no}".encode())
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def window_url(rt: Runtime, hall_code: str, window_no: str) -> str:
    return (f"{rt.settings.public_url}/hall/w/{quote(hall_code, safe='')}/{quote(window_no, safe='')}/"
            f"{signature(rt, hall_code, window_no)}")


def mask_case_no(case_no: str) -> str:
    """Enough for a person to know their own case, not to read another's: the first two and last four kept."""
    return case_no if len(case_no) <= 6 else case_no[:2] + "*" * (len(case_no) - 6) + case_no[-4:]


async def window_qr(request: web.Request) -> web.Response:
    require_token(request)
    asked = qr_codes.options(request)
    if isinstance(asked, web.Response):
        return asked
    fmt, scale = asked
    hall_code, window_no = request.query.get("hall_code", "").strip(), request.query.get("window_no", "").strip()
    errors = [{"field": f, "message": "required"} for f, v in (("hall_code", hall_code), ("window_no", window_no))
              if not v]
    if errors:
        return json_response({"errors": errors}, 422)
    rt = runtime(request)
    return qr_codes.response(window_url(rt, hall_code, window_no), fmt, scale)


async def window_page(request: web.Request) -> web.Response:
    rt = runtime(request)
    hall_code, window_no = request.match_info["hall"], request.match_info["window"]
    locale = pages.locale_of(request)
    t = rt.catalogs.text
    if not hmac.compare_digest(request.match_info["sig"], signature(rt, hall_code, window_no)):
        return pages.render(request, "hall_unpaired.html", locale, 404, heading=t(locale, "page.invalid_heading"),
                            line=t(locale, "page.invalid"))
    async with rt.db.read() as session:
        found = await hall.at_window(session, hall_code, window_no, now(request) - WINDOW)
    cases = [{"item_name": c.item_name, "case_no": mask_case_no(c.case_no), "name": c.applicant_name_masked or "",
              "at": local_time(c.completed_at, rt.policy.tz, locale), "staff": c.staff_name or c.staff_id or "",
              "link": f"/r/{rt.links.token(c.id)}?via=qr"}
             for c in found if c.id is not None]
    return pages.render(request, "hall_window.html", locale, window_no=window_no, cases=cases)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/hall/windows/qr", window_qr)
    app.router.add_get("/hall/w/{hall}/{window}/{sig}", window_page)
