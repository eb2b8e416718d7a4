"""GET /simulator/ and its small JSON API: the embedded default's way to see the whole conversation.

Available only on the `local` provider (Settings.simulator_enabled); otherwise every simulator path
is 404. The page is static markup plus static/simulator.js; the script talks to /simulator/api/…
with JSON bodies, which another site's form cannot send, and the Origin is checked besides.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.web import pages, rating_page
from bot.web.common import NOW_OF_REQUEST, RUNTIME_OF_REQUEST, json_response, read_json, runtime
from bot.web.simulator import CHANNELS, MAX_JUMP, Sim, SimError, Simulator, template_check

COOKIE = "hcp_sim"
SIMULATOR = web.AppKey("simulator", Simulator)


async def _enabled(request: web.Request) -> Simulator:
    """The simulator, its world open; 404 wherever any provider is configured."""
    if not runtime(request).settings.simulator_enabled:
        raise web.HTTPNotFound(text="the simulator runs only where no provider (SMS, WeChat, voice) is configured")
    simulator = request.app[SIMULATOR]
    await simulator.world()
    return simulator


async def _sim(request: web.Request, sim_: Simulator) -> Sim | None:
    return await sim_.load(request.cookies.get(COOKIE))


def _keep(response: web.StreamResponse, request: web.Request, sim: Sim) -> None:
    response.set_cookie(COOKIE, sim.id, httponly=True, samesite="Strict", path="/simulator/", max_age=24 * 3600,
                        secure=runtime(request).settings.public_url.startswith("https://"))


async def page(request: web.Request) -> web.Response:
    sim_ = await _enabled(request)
    sim = await _sim(request, sim_)
    if sim is None:
        sim = Sim.new()
        await sim_.save(sim)
    response = pages.render(request, "simulator.html", pages.locale_of(request))
    _keep(response, request, sim)
    return response


async def state(request: web.Request) -> web.Response:
    sim_ = await _enabled(request)
    sim = await _sim(request, sim_)
    if sim is None:
        return json_response({"error": "no simulator session; open /simulator/ again"}, status=409)
    return json_response(await sim_.view(sim, pages.locale_of(request)))


async def templates(request: web.Request) -> web.Response:
    """The template check (issue 20): for Aliyun and Tencent, the message keys the policy gives no template for."""
    sim_ = await _enabled(request)
    return json_response(template_check(sim_.rt.policy))


async def act(request: web.Request) -> web.Response:
    sim_ = await _enabled(request)
    if request.content_type != "application/json" or not pages.same_origin(request):
        return json_response({"error": "JSON from the simulator page only"}, status=403)
    action = request.match_info["action"]
    body: Any = await read_json(request)
    if not isinstance(body, dict):
        return json_response({"errors": [{"field": "body", "message": "expected a JSON object"}]}, status=422)
    sim = await _sim(request, sim_)
    if action == "reset" or sim is None:
        sim = Sim.new()
    try:
        await _do(sim_, sim, action, body)
    except SimError as exc:
        await sim_.save(sim)
        return json_response({"error": str(exc)}, status=422)
    await sim_.save(sim)
    response = json_response(await sim_.view(sim, pages.locale_of(request)))
    _keep(response, request, sim)
    return response


async def _do(sim_: Simulator, sim: Sim, action: str, body: dict[str, Any]) -> None:
    channel = body.get("channel")
    if action == "case":
        await sim_.post_case(sim, str(channel))
    elif action == "clock":
        to = body.get("to")
        try:
            target = datetime.fromisoformat(to) if isinstance(to, str) else None
        except ValueError:
            raise SimError("to: expected an ISO-8601 instant with an offset") from None
        hours = body.get("hours")
        number = isinstance(hours, int | float) and not isinstance(hours, bool) and math.isfinite(hours)
        if target is None and not number:
            raise SimError("hours or to is required (a number of hours, or an instant with an offset)")
        if number and not 0 <= hours <= MAX_JUMP.total_seconds() / 3600:
            raise SimError("the clock moves forward only, at most 400 days at a time")
        await sim_.move_clock(sim, hours=float(hours) if number else None, to=target)
    elif action == "text":
        if channel not in CHANNELS[:2]:
            raise SimError("channel: expected sms or wechat")
        await sim_.text(sim, str(channel), str(body.get("text") or ""))
    elif action == "call":
        await sim_.call(sim)
    elif action == "keys":
        digits = body.get("digits")
        await sim_.keys(sim, str(digits) if digits is not None else None)
    elif action == "hangup":
        sim_.hang_up(sim)
    elif action != "reset":
        raise SimError(f"no such action {action!r}")


async def rating(request: web.Request) -> web.StreamResponse:
    """The rating page of a simulated case (its link in a simulated SMS), served on the world's store at the
    simulated instant of the browser's simulator session (its cookie's path is /simulator/): the dates it shows,
    whether the case can still be rated, and a rating's time are the simulator's. Without a session, the
    service's clock."""
    sim_ = await _enabled(request)
    request[RUNTIME_OF_REQUEST] = sim_.rt
    sim = await _sim(request, sim_)
    if sim is not None:
        request[NOW_OF_REQUEST] = sim_.now(sim)
    return await (rating_page.show if request.method == "GET" else rating_page.submit)(request)


async def to_simulator(request: web.Request) -> web.StreamResponse:
    await _enabled(request)
    raise web.HTTPPermanentRedirect("/simulator/")


def setup(app: web.Application, simulator: Simulator) -> None:
    app[SIMULATOR] = simulator  # its world is closed with the runtime (Runtime.close)
    app.router.add_get("/simulator", to_simulator)
    app.router.add_get("/simulator/r/{token}", rating)
    app.router.add_post("/simulator/r/{token}", rating)
    app.router.add_get("/simulator/", page)
    app.router.add_get("/simulator/api/state", state)
    app.router.add_get("/simulator/api/templates", templates)
    app.router.add_post("/simulator/api/{action}", act)
