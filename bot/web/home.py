"""GET /: where a newcomer's browser lands first.

On the embedded defaults (no provider of any kind, the simulator on) it is the simulator; elsewhere a short
page in the reader's language saying that the service runs, with the way to the console and to /healthz.
It names nothing of the data: no case, no person, no count, no configuration.
"""

from __future__ import annotations

from aiohttp import web

from bot.web import pages
from bot.web.common import runtime


async def home(request: web.Request) -> web.StreamResponse:
    if runtime(request).settings.simulator_enabled:
        raise web.HTTPFound("/simulator/")  # not permanent: configuring a provider makes / the status page
    return pages.render(request, "home.html", pages.locale_of(request))


def setup(app: web.Application) -> None:
    app.router.add_get("/", home)
