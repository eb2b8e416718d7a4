"""QR codes of rating links, for paper: the receipt's (办件回执, Shantou art. 17 (二)).

`GET /api/v1/cases/{case_no}/qr` (bearer token) answers a PNG (`?format=svg`: SVG) of the case's rating link with
`?via=qr`, so that a rating given through it is stored with channel `qr`. Made with segno (maintained, pure Python,
PNG and SVG without an imaging library). Error correction M (15 %: a receipt folded or smudged still scans); four
modules of quiet zone, as ISO/IEC 18004 asks; 6 px a module by default, about 250 px for a link of this length:
2.2 cm on a 203 dpi receipt printer, 3 cm at 8 dots/mm on an 80 mm roll. `?scale=` (1–20) sets another.
"""

from __future__ import annotations

import io

import segno
from aiohttp import web

from bot.web.common import error, json_response, require_token, runtime
from store import cases as case_store

FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
SCALE = 6
MAX_SCALE = 20


def image(text: str, fmt: str, scale: int = SCALE) -> bytes:
    """A QR code of `text` as PNG or SVG bytes."""
    code = segno.make(text, error="m", micro=False)
    out = io.BytesIO()
    if fmt == "svg":
        code.save(out, kind="svg", scale=scale, border=4, xmldecl=True, svgns=True, title="QR")
    else:
        code.save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def response(text: str, fmt: str, scale: int = SCALE) -> web.Response:
    """A QR code of `text` as the answer: the image, its type, not kept by caches (it names a case or a window)."""
    return web.Response(body=image(text, fmt, scale), content_type=FORMATS[fmt],
                        headers={"Cache-Control": "private, no-store"})


def options(request: web.Request) -> tuple[str, int] | web.Response:
    """(format, scale) from the query, or a 422 naming what was wrong."""
    fmt = request.query.get("format", "png")
    raw = request.query.get("scale", str(SCALE))
    errors = []
    if fmt not in FORMATS:
        errors.append({"field": "format", "message": f"expected one of {', '.join(FORMATS)}"})
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_SCALE):
        errors.append({"field": "scale", "message": f"expected a whole number of pixels a module, 1–{MAX_SCALE}"})
    if errors:
        return json_response({"errors": errors}, status=422)
    return fmt, int(raw)


def qr_link(link: str) -> str:
    """The rating link as the QR code carries it: the rating page then stores the rating with channel `qr`."""
    return link + ("&" if "?" in link else "?") + "via=qr"


async def case_qr(request: web.Request) -> web.Response:
    require_token(request)
    asked = options(request)
    if isinstance(asked, web.Response):
        return asked
    fmt, scale = asked
    rt = runtime(request)
    async with rt.db.read() as session:
        case = await case_store.by_no(session, request.match_info["case_no"])
    if case is None or case.id is None:
        return error(404, "no such case")
    return response(qr_link(rt.links.url(case.id)), fmt, scale)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/cases/{case_no}/qr", case_qr)
