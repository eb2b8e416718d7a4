"""GET /api/v1/stats (CONTRACT): cases, participation, mean score, bad reviews, rectification, per group;
with ours beside it: the composite score, hall coverage, rankings and frozen snapshots (issue 8)."""

from __future__ import annotations

import re
from datetime import date, datetime, tzinfo

from aiohttp import web

from bot.figures import rankings as figures
from bot.figures import snapshots
from bot.infra.limits import clamp_instant, day_bound
from bot.web import console_auth, work_orders_api
from bot.web.common import json_response, now, read_json, runtime
from bot.work_orders.actors import Actor
from store import snapshots as snapshot_store
from store import stats

GROUPS = stats.GROUPS
PUBLISHERS = ("api", "admin", "l1")  # who may publish a period: the business systems and L1 supervisors
LABEL = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _bound(value: str, tz: tzinfo, *, end: bool) -> datetime:
    """A date means the local day (`to` includes that whole day); an instant is taken as given. Either is
    clamped to the accepted range (bot/infra/limits.py): a period reaching beyond it is the part inside."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        return day_bound(day, tz, end=end)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("an instant needs an offset")
    return clamp_instant(parsed)


def period(request: web.Request, source: dict[str, object] | None = None
           ) -> tuple[dict[str, datetime], list[dict[str, str]]]:
    """`from` and `to` of the query (or of a JSON body), and the errors of those that do not parse."""
    tz = runtime(request).policy.tz
    given = source if source is not None else request.query
    bounds, errors = {}, []
    for name in ("from", "to"):
        raw = given.get(name)
        if raw:
            try:
                if not isinstance(raw, str):
                    raise ValueError(raw)
                bounds[name] = _bound(raw, tz, end=name == "to")
            except ValueError:
                errors.append({"field": name, "message": "expected a date (2026-11-01) or an ISO-8601 instant "
                                                          "with an offset"})
    if not errors and "from" in bounds and "to" in bounds and bounds["to"] < bounds["from"]:
        errors.append({"field": "to", "message": "the period ends before it begins"})
    return bounds, errors


async def reader(request: web.Request) -> Actor:
    """Business systems and users by bearer token; the console's charts by its session cookie (a read
    only, so a cookie is enough: another site's page cannot read the answer)."""
    if not request.headers.get("Authorization"):
        who = await console_auth.current(request)
        if who is not None:
            return who.actor
    return await work_orders_api.actor(request)


async def get_stats(request: web.Request) -> web.Response:
    who = await reader(request)
    rt = runtime(request)
    by = request.query.get("by", "agency")
    if by not in GROUPS:
        return json_response({"errors": [{"field": "by", "message": f"expected one of {', '.join(GROUPS)}"}]}, 422)
    bounds, errors = period(request)
    if errors:
        return json_response({"errors": errors}, 422)
    async with rt.db.read() as session:
        doc = await figures.report(session, rt.policy.statistics, by, bounds.get("from"),  # type: ignore[arg-type]
                                   bounds.get("to"), who.agencies, rt.db.dialect)
    return json_response(doc)


async def get_rankings(request: web.Request) -> web.Response:
    who = await reader(request)
    rt = runtime(request)
    of = request.query.get("of", "agency")
    metric = request.query.get("metric", "composite_score")
    bounds, errors = period(request)
    if of not in figures.RANKED:
        errors.append({"field": "of", "message": f"expected one of {', '.join(figures.RANKED)}"})
    if metric not in figures.RANK_METRICS:
        errors.append({"field": "metric", "message": f"expected one of {', '.join(figures.RANK_METRICS)}"})
    if errors:
        return json_response({"errors": errors}, 422)
    async with rt.db.read() as session:
        doc = await figures.rankings(session, rt.policy.statistics, of, metric,  # type: ignore[arg-type]
                                     bounds.get("from"), bounds.get("to"), who.agencies, rt.db.dialect)
    return json_response(doc)


async def publish(request: web.Request) -> web.Response:
    # A bearer token only: the console's cookie is for reading (a POST with it alone could come from a
    # page of a neighbouring site, and a label taken by a wrong period can never be published again).
    who = await work_orders_api.actor(request)
    if who.role not in PUBLISHERS or who.agencies is not None:
        return json_response({"error": "publishing a period is for the business systems, admins and L1 users "
                                       "whose jurisdiction is every agency"}, 403)
    rt = runtime(request)
    doc = await read_json(request)
    if not isinstance(doc, dict):
        return json_response({"errors": [{"field": "body", "message": "expected a JSON object"}]}, 422)
    bounds, errors = period(request, doc)
    for name in ("from", "to"):
        if not doc.get(name):
            errors.append({"field": name, "message": "a published period needs both ends"})
    label = doc.get("label")
    if label is None and not errors:
        label = f"{doc['from']}..{doc['to']}"
    if not isinstance(label, str) or not LABEL.match(label):
        errors.append({"field": "label", "message": "1–64 letters, digits or _ . : -"})
    if errors:
        return json_response({"errors": errors}, 422)
    try:
        snap = await snapshots.publish(rt, label, bounds["from"], bounds["to"], who.name, now(request),
                                       address=request.remote)
    except snapshot_store.SnapshotExists as exc:
        return json_response({"error": str(exc), "snapshot": snapshots.summary(rt, exc.existing)}, 409)
    return json_response(snapshots.summary(rt, snap), 201)


async def list_snapshots(request: web.Request) -> web.Response:
    await reader(request)
    rt = runtime(request)
    async with rt.db.read() as session:
        rows = await snapshot_store.listing(session)
    return json_response({"snapshots": [snapshots.summary(rt, s) for s in rows]})


async def get_snapshot(request: web.Request) -> web.Response:
    await reader(request)
    rt = runtime(request)
    async with rt.db.read() as session:
        snap = await snapshot_store.by_label(session, request.match_info["label"])
    if snap is None:
        return json_response({"error": "no snapshot with that label"}, 404)
    if request.match_info.get("verify"):
        return json_response(await snapshots.verify(rt, snap))
    # The stored text is returned as stored, so the hash can be checked against the very bytes.
    body = '{"snapshot":' + snapshot_store.canonical(snapshots.summary(rt, snap)) + ',"content":' + snap.content + "}"
    return web.Response(text=body, content_type="application/json")


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/stats", get_stats)
    app.router.add_get("/api/v1/rankings", get_rankings)
    app.router.add_post("/api/v1/stats/snapshots", publish)
    app.router.add_get("/api/v1/stats/snapshots", list_snapshots)
    app.router.add_get("/api/v1/stats/snapshots/{label}", get_snapshot)
    app.router.add_get("/api/v1/stats/snapshots/{label}/{verify:verify}", get_snapshot)
