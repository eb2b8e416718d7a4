"""GET /api/v1/stats (CONTRACT): cases, participation, mean score, bad reviews, rectification, per group."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo

from aiohttp import web

from bot.web import console_auth, work_orders_api
from bot.web.common import json_response, runtime
from bot.work_orders import Actor
from store import stats

GROUPS = stats.GROUPS


def _bound(value: str, tz: tzinfo, *, end: bool) -> datetime:
    """A date means the local day (`to` includes that whole day); an instant is taken as given."""
    try:
        day = date.fromisoformat(value)
        return datetime.combine(day + timedelta(days=1 if end else 0), time(0), tzinfo=tz)
    except ValueError:
        pass
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("an instant needs an offset")
    return parsed


async def reader(request: web.Request) -> Actor:
    """Business systems and users by bearer token; the console's charts by its session cookie (a read
    only, so a cookie is enough: another site's page cannot read the answer)."""
    if not request.headers.get("Authorization"):
        who = await console_auth.current(request)
        if who is not None:
            return who.actor
    return await work_orders_api.actor(request)


def group_json(g: stats.GroupFigures) -> dict[str, object]:
    return {
        "key": g.key, "name": g.name, "cases": g.cases, "rated": g.rated,
        "participation_rate": round(g.rated / g.cases, 4) if g.cases else None,
        "mean_score": g.mean_score, "bad_reviews": g.bad_reviews,
        "rectification_rate": round(g.rectified / g.work_orders, 4) if g.work_orders else None,
        "work_orders": g.work_orders, "overdue": g.overdue,
    }


async def get_stats(request: web.Request) -> web.Response:
    who = await reader(request)
    rt = runtime(request)
    by = request.query.get("by", "agency")
    if by not in GROUPS:
        return json_response({"errors": [{"field": "by", "message": f"expected one of {', '.join(GROUPS)}"}]}, 422)
    bounds = {}
    for name in ("from", "to"):
        raw = request.query.get(name)
        if raw:
            try:
                bounds[name] = _bound(raw, rt.policy.tz, end=name == "to")
            except ValueError:
                return json_response({"errors": [{"field": name, "message": "expected a date (2026-11-01) or an "
                                                  "ISO-8601 instant with an offset"}]}, 422)
    async with rt.db.read() as session:
        groups = await stats.figures(session, by, bounds.get("from"), bounds.get("to"),  # type: ignore[arg-type]
                                     who.agencies, dialect=rt.db.dialect)
    return json_response({"by": by, "groups": [group_json(g) for g in groups]})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/stats", get_stats)
