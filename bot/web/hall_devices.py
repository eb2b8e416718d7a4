"""The hall's rating devices (评价器, Shantou art. 17 (一)) and terminals' rating screens (art. 23).

An admin registers a device for one window (or one self-service terminal) of a hall; the answer holds the device's
token once, in a pairing link. The device opens the link once: the token goes into a cookie (HttpOnly, path
/hall/) and the device shows its page, with no user's log-in at the counter. The page listens to a server-sent
event stream; when a business system posts a case completed at that window (the case names the window, or names
none and the window's clerk), the stream sends it at once (a wake-up, bot/infra/wakeups.py; the stream also looks
every few seconds on its own) and the page turns to its rating screen: the item, the case number, the clerk's
name and number, the five grades and, for a bad grade, the policy's reasons, as the rating page asks them. The
rating is stored with channel `hall` (a terminal's: `terminal`, with its number), the case's clerk and the window.
A batch's cases are one rating (art. 24): the first one rated rates the rest, which are then no longer shown.

    POST /api/v1/hall/devices            {"kind", "hall_code", "window_no" | "terminal_no", "staff_id"?, …} → 201
    GET  /api/v1/hall/devices?hall_code=  → {"devices": [... "status": "online" | "offline" | "revoked"]}
    POST /api/v1/hall/devices/{id}/revoke → the device is refused at once (its stream closes)
    GET  /hall/pair?token=…              → the cookie, then /hall/device
    GET  /hall/device                    → the page (static/hall.js)
    GET  /hall/device/events             → text/event-stream: "case" events, "revoked"
    POST /hall/device/ratings            {"token", "grade", "reasons"?, "text"?, "rating_id"} → 201 (200: a repeat)

Offline, the page keeps its ratings (localStorage) and sends them when the network is back; `rating_id`, chosen by
the page, makes each one stored once however often it is sent (the evaluation's unique `ref`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from bot.infra.refusals import Refusal
from bot.infra.runtime import Runtime
from bot.rating.ratings import chosen, rating_errors, record
from bot.web import pages, refusals, views
from bot.web.common import RUNTIME, error, json_response, now, read_json, require_token, runtime
from dialogs.grades import Grade
from store import cases as case_store
from store import evaluations as evaluation_store
from store import hall
from store.models import Case, HallDevice

COOKIE = "hcp_hall"
KINDS = ("window", "terminal")
RECENT = timedelta(minutes=10)  # a case completed longer ago is not shown on a device that (re)connects
POLL = 5.0  # seconds between a stream's own looks, wake-ups apart; each look sends a keep-alive
ONLINE = timedelta(minutes=2)  # a device seen since is "online" in the list
RATING_ID = 64


def token_hash(token: str) -> str:
    """Only the token's hash is stored: a copy of the database pairs no device."""
    return hashlib.sha256(token.encode()).hexdigest()


def _code(value: Any, field: str, limit: int, errors: list[dict[str, str]], *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            errors.append({"field": field, "message": "required"})
        return None
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > limit or not value.isprintable():
        errors.append({"field": field, "message": f"expected text of 1–{limit} printable characters"})
        return None
    return value.strip()


def device_json(rt: Runtime, d: HallDevice, stamp: datetime) -> dict[str, Any]:
    status = ("revoked" if d.revoked_at else
              "online" if d.last_seen_at and d.last_seen_at >= stamp - ONLINE else "offline")
    return {"id": d.id, "kind": d.kind, "hall_code": d.hall_code, "window_no": d.window_no,
            "terminal_no": d.terminal_no, "staff_id": d.staff_id, "staff_name": d.staff_name, "label": d.label,
            "status": status, "last_seen_at": views.instant(rt, d.last_seen_at),
            "created_at": views.instant(rt, d.created_at), "revoked_at": views.instant(rt, d.revoked_at)}


# --- the admin's API ---------------------------------------------------------------------------------------

async def register(request: web.Request) -> web.Response:
    require_token(request)
    rt = runtime(request)
    doc = await read_json(request)
    if not isinstance(doc, dict):
        return json_response({"errors": [{"field": "body", "message": "expected a JSON object"}]}, 422)
    errors: list[dict[str, str]] = []
    kind = doc.get("kind", "window")
    if kind not in KINDS:
        errors.append({"field": "kind", "message": f"expected one of {', '.join(KINDS)}"})
    fields = {
        "hall_code": _code(doc.get("hall_code"), "hall_code", 100, errors, required=True),
        "window_no": _code(doc.get("window_no"), "window_no", 32, errors, required=kind == "window"),
        "terminal_no": _code(doc.get("terminal_no"), "terminal_no", 64, errors, required=kind == "terminal"),
        "staff_id": _code(doc.get("staff_id"), "staff_id", 100, errors, required=False),
        "staff_name": _code(doc.get("staff_name"), "staff_name", 100, errors, required=False),
        "label": _code(doc.get("label"), "label", 200, errors, required=False),
    }
    if errors:
        return json_response({"errors": errors}, 422)
    token = secrets.token_urlsafe(32)
    stamp = now(request)
    async with rt.db.write() as session:
        device = await hall.add(session, HallDevice(kind=kind, token_hash=token_hash(token), created_at=stamp,
                                                    **fields))
        body = device_json(rt, device, stamp)
    return json_response({**body, "token": token, "pair_url": f"{rt.settings.public_url}/hall/pair?token={token}"},
                         201)


async def listing(request: web.Request) -> web.Response:
    require_token(request)
    rt = runtime(request)
    stamp = now(request)
    async with rt.db.read() as session:
        found = await hall.listed(session, request.query.get("hall_code") or None)
    return json_response({"devices": [device_json(rt, d, stamp) for d in found]})


async def revoke(request: web.Request) -> web.Response:
    require_token(request)
    rt = runtime(request)
    raw = request.match_info["device_id"]
    if not raw.isdigit():
        return error(404, "no such device")
    async with rt.db.write() as session:
        device = await hall.by_id(session, int(raw))
        if device is None:
            return error(404, "no such device")
        changed = await hall.revoke(session, int(raw), now(request))
    await rt.wakeups.wake(f"hall:{device.hall_code}")  # its stream looks again now, and closes
    return json_response({"id": device.id, "revoked": True, "changed": changed})


# --- the device --------------------------------------------------------------------------------------------

async def _device(request: web.Request) -> HallDevice | None:
    token = request.cookies.get(COOKIE, "")
    if not token or len(token) > 100:
        return None
    async with runtime(request).db.read() as session:
        return await hall.by_token_hash(session, token_hash(token))


def _unpaired(request: web.Request) -> web.Response:
    rt = runtime(request)
    locale = pages.locale_of(request)
    return pages.render(request, "hall_unpaired.html", locale, 401,
                        heading=rt.catalogs.text(locale, "hall.unpaired_heading"),
                        line=rt.catalogs.text(locale, "hall.unpaired"))


async def pair(request: web.Request) -> web.StreamResponse:
    token = request.query.get("token", "")
    rt = runtime(request)
    async with rt.db.read() as session:
        device = await hall.by_token_hash(session, token_hash(token)) if 0 < len(token) <= 100 else None
    if device is None:
        return _unpaired(request)
    response = web.HTTPSeeOther("/hall/device")
    response.set_cookie(COOKIE, token, max_age=10 * 365 * 24 * 3600, httponly=True, samesite="Strict",
                        secure=rt.settings.public_url.startswith("https://"), path="/hall/")
    raise response


async def page(request: web.Request) -> web.Response:
    device = await _device(request)
    if device is None:
        return _unpaired(request)
    rt = runtime(request)
    locale = pages.locale_of(request)
    t = rt.catalogs.text
    keys = ("page.question", "page.reasons", "page.text", "page.submit", "page.back", "page.thanks",
            "page.need_reason", "page.need_text", "hall.idle", "hall.case_no", "hall.clerk", "hall.offline",
            "hall.pending", "hall.revoked", "hall.window", "hall.terminal", "mp.error")
    data = {
        "words": {key: t(locale, key) for key in keys},
        "grades": [{"code": g.value, "label": t(locale, f"grade.{g.value}"), "bad": g.is_bad} for g in Grade],
        "reasons": [{"code": c, "label": rt.catalogs.reason_label(locale, c, rt.policy.reasons)}
                    for c in rt.policy.reasons],
        "device": {"kind": device.kind, "window_no": device.window_no, "terminal_no": device.terminal_no,
                   "staff_id": device.staff_id, "staff_name": device.staff_name},
    }
    return pages.render(request, "hall_device.html", locale, device=device,
                        data=json.dumps(data, ensure_ascii=False).replace("</", "<\\/"))


def _case_event(rt: Runtime, case: Case, device: HallDevice) -> dict[str, Any]:
    assert case.id is not None
    return {"id": case.id, "token": rt.links.token(case.id), "case_no": case.case_no, "item_name": case.item_name,
            "agency_name": case.agency_name, "staff_id": case.staff_id or device.staff_id,
            "staff_name": case.staff_name or device.staff_name, "window_no": device.window_no,
            "terminal_no": device.terminal_no}


async def events(request: web.Request) -> web.StreamResponse:
    device = await _device(request)
    if device is None:
        return _unpaired(request)
    rt = runtime(request)
    assert device.id is not None
    last = request.headers.get("Last-Event-ID") or request.query.get("after") or ""
    after = int(last) if last.isdigit() and len(last) < 19 else 0
    since = now(request) - RECENT
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})  # nginx: no buffering of the stream
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    async with rt.wakeups.waiter(f"hall:{device.hall_code}") as woken:
        while True:
            woken.clear()
            stamp = now(request)
            async with rt.db.read() as session:
                current = await hall.by_id(session, device.id)
                case = (await hall.newest_unrated(session, current, after, since)
                        if current is not None and current.revoked_at is None else None)
            if current is None or current.revoked_at is not None:
                await response.write(b"event: revoked\ndata: {}\n\n")
                return response
            if current.last_seen_at is None or current.last_seen_at < stamp - hall.SEEN_EVERY:
                async with rt.db.write() as session:  # the console's status, written now and then only
                    await hall.seen(session, device.id, stamp)
            if case is not None and case.id is not None:
                after = case.id
                payload = json.dumps(_case_event(rt, case, current), ensure_ascii=False)
                await response.write(f"id: {case.id}\nevent: case\ndata: {payload}\n\n".encode())
            else:
                await response.write(b": waiting\n\n")  # a keep-alive: proxies close silent streams
            stopping = request.app[STOPPING]
            if stopping.is_set():
                return response
            try:
                await asyncio.wait_for(woken.wait(), POLL)
            except TimeoutError:
                pass
            if stopping.is_set():
                return response


async def rate(request: web.Request) -> web.Response:
    device = await _device(request)
    if device is None:
        return error(401, "this device is not registered, or was revoked: pair it again")
    rt = runtime(request)
    doc = await read_json(request)
    rating_id = doc.get("rating_id") if isinstance(doc, dict) else None
    body = {**doc, "case_no": "-"} if isinstance(doc, dict) else doc
    errs = [e.as_json() for e in rating_errors(body, set(rt.policy.reasons), channel=False)]
    if not (isinstance(rating_id, str) and 8 <= len(rating_id) <= RATING_ID and rating_id.isascii()
            and rating_id.replace("-", "").isalnum()):
        errs.append({"field": "rating_id", "message": f"required: the page's id of this rating (8–{RATING_ID} "
                                                      "letters, digits or '-'), the same on every resend"})
    token = doc.get("token") if isinstance(doc, dict) else None
    case_id = rt.links.case_id(token) if isinstance(token, str) else None
    if case_id is None:
        errs.append({"field": "token", "message": "not a case's token from this device's stream"})
    if errs:
        return json_response({"errors": errs}, 422)
    grade, reasons, text = chosen(doc)
    assert isinstance(rating_id, str) and case_id is not None and device.id is not None
    ref = f"hall:{device.id}:{rating_id}"
    stamp = now(request)
    try:
        async with rt.db.write() as session:
            case = await case_store.by_id(session, case_id, lock=rt.db.locks_rows)
            if case is None or case.hall_code != device.hall_code or not _at_window(case, device):
                return error(404, "no such case at this device's window")
            again = await evaluation_store.by_ref(session, ref) if case.rated_at is not None else None
            if again is not None:  # the page sent it again (a lost answer, the network back): stored once
                return json_response({**views.evaluation_json(rt, again), "repeat": True}, 200)
            evaluation = await record(
                session, rt, case, grade, reasons if grade.is_bad else (), text,
                "terminal" if device.kind == "terminal" else "hall", stamp, ref=ref,
                terminal_id=device.terminal_no, window_no=device.window_no,
                device_hash=rt.sealer.lookup_hash("device", f"hall-device:{device.id}"))
            answer = views.evaluation_json(rt, evaluation)
    except Refusal as exc:  # barred, rated already, the follow-up window closed: said as the API says it
        return refusals.response(exc)
    return json_response({**answer, "next": "work_order" if grade.is_bad else "thanks"}, 201)


def _at_window(case: Case, device: HallDevice) -> bool:
    if case.window_no is not None:
        return case.window_no == device.window_no
    return device.staff_id is not None and case.staff_id == device.staff_id


STOPPING = web.AppKey("hall_stopping", asyncio.Event)


async def _listen(app: web.Application) -> Any:
    """The other processes' wake-ups, while the app runs (Redis only; nothing to do in one process); and, when the
    app stops, the device streams told to end (an open stream would hold the shutdown until its next look)."""
    task = asyncio.create_task(app[RUNTIME].wakeups.listen())
    yield
    task.cancel()
    await asyncio.wait([task], timeout=5)  # a subscription that will not close must not hold the shutdown


async def _stop_streams(app: web.Application) -> None:
    app[STOPPING].set()
    app[RUNTIME].wakeups.wake_all()


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/hall/devices", register)
    app.router.add_get("/api/v1/hall/devices", listing)
    app.router.add_post("/api/v1/hall/devices/{device_id}/revoke", revoke)
    app.router.add_get("/hall/pair", pair)
    app.router.add_get("/hall/device", page)
    app.router.add_get("/hall/device/events", events)
    app.router.add_post("/hall/device/ratings", rate)
    app[STOPPING] = asyncio.Event()
    app.cleanup_ctx.append(_listen)
    app.on_shutdown.append(_stop_streams)
