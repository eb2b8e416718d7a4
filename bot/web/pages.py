"""What every people-facing page shares: templates, the reader's language, static files, headers.

Pages are Jinja2 templates with autoescaping on; every text in them is a catalog key rendered in the
reader's language (`t("page.title")`), so that the templates hold markup and no words. Everything a
page needs (styles, scripts) is served from /static/ by the service itself: government networks are
closed, and the Content-Security-Policy below forbids anything else, inline scripts included.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from aiohttp import web
from babel import Locale
from markupsafe import Markup

from bot.infra.i18n import SOURCE, SUPPORTED, negotiate
from bot.infra.limits import shown
from bot.web.common import runtime

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
LANG_COOKIE = "hcp_lang"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
}

def _visible(value: Any) -> Any:
    """Every text a page shows: control and bidi characters as a visible mark ([U+202E], bot/infra/limits.py), so
    that a rater's words cannot turn the console's text around or hide part of it."""
    if isinstance(value, Markup):
        return Markup(shown(str(value)))
    return shown(value) if isinstance(value, str) else value


_env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                          finalize=_visible)


@cache
def _static_version(name: str) -> str:
    """A digest of the file in its URL: a changed file is fetched anew, an unchanged one stays cached."""
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:10]


@cache
def _static_names() -> frozenset[str]:
    return frozenset(p.name for p in STATIC.iterdir() if p.is_file())


def static_url(name: str) -> str:
    return f"/static/{name}?v={_static_version(name)}"


def autonym(locale: str) -> str:
    """Each language in its own name (CLDR), as a language switch shows them."""
    return Locale.parse(locale).get_display_name(locale) or locale


def locale_of(request: web.Request, fallback: str = SOURCE) -> str:
    """?lang= (the page's switch), then the switch remembered in a cookie, then Accept-Language."""
    chosen = request.query.get("lang") or request.cookies.get(LANG_COOKIE)
    if chosen in SUPPORTED:
        return chosen
    for part in request.headers.get("Accept-Language", "").split(","):
        tag = part.split(";")[0].strip()
        if tag.lower().startswith(("zh", "en")):
            return negotiate(tag)
    return fallback


def render(request: web.Request, template: str, locale: str, http_status: int = 200, *,
           headers: dict[str, str] | None = None, **context: Any) -> web.Response:
    rt = runtime(request)

    def t(key: str, **params: Any) -> str:
        text = rt.catalogs.text(locale, key)
        return text.format(**params) if params else text

    html = _env.get_template(template).render(
        t=t, locale=locale, lang=locale.replace("_", "-"), static=static_url, request=request,
        languages=[(loc, autonym(loc)) for loc in SUPPORTED], **context)
    response = web.Response(text=html, content_type="text/html", charset="utf-8", status=http_status,
                            headers={**SECURITY_HEADERS, **(headers or {})})
    if request.query.get("lang") in SUPPORTED:
        response.set_cookie(LANG_COOKIE, locale, max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                            secure=rt.settings.public_url.startswith("https://"), path="/")
    return response


def same_origin(request: web.Request) -> bool:
    """A browser's Origin (or Referer) must be this service's, when it sends one."""
    rt = runtime(request)
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin or origin == "null":
        return origin is None
    got = urlsplit(origin)
    public = urlsplit(rt.settings.public_url)
    return (got.scheme, got.netloc) in {(public.scheme, public.netloc), (request.scheme, request.host)}


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    # Only the names of the files there: a NUL, a separator, "..", a name longer than the system takes
    # (OSError) never reach the file system's error paths.
    if name not in _static_names():
        raise web.HTTPNotFound(text="no such file")
    path = STATIC / name
    cache = "public, max-age=31536000, immutable" if request.query.get("v") else "public, max-age=300"
    return web.FileResponse(path, headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"})


def setup(app: web.Application) -> None:
    app.router.add_get("/static/{name}", static)
