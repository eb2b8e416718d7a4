"""The console's supervision pages (docs/supervision.md): the queue of signals for L1 supervisors, with their
evidence and cases and a form to decide; and the supervisory calls for agents, with the number revealed on a
click (audited, as at a work order's callback) and a form for the answer.

Both go through the same rules as the API (bot/supervision/decisions.py, draws.py): the console can do nothing
the API would refuse.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.infra import audit
from bot.infra.limits import parse_id
from bot.infra.refusals import Refusal
from bot.infra.runtime import Runtime
from bot.supervision import decisions, draws
from bot.web import console_auth, refusals
from bot.web.common import now
from bot.web.console import CHANNEL_KEYS, REFUSED_KEYS, View
from bot.work_orders.actors import Actor
from dialogs.addresses import mask_phone
from store import signals as signal_store
from store import supervision as supervision_store
from store import work_orders as work_order_store
from store.models import Contact, Signal, WorkOrder

LIMIT = 200

KIND_KEYS = {"good_burst": "console.signal_kind.good_burst", "fast_answer": "console.signal_kind.fast_answer",
             "shared_rater": "console.signal_kind.shared_rater", "own_window": "console.signal_kind.own_window",
             "serial_bad": "console.signal_kind.serial_bad",
             "repeated_text": "console.signal_kind.repeated_text",
             "grade_shift": "console.signal_kind.grade_shift",
             "denied_rating": "console.signal_kind.denied_rating"}
STATUS_KEYS = {"open": "console.signal_status.open", "dismissed": "console.signal_status.dismissed",
               "confirmed": "console.signal_status.confirmed"}
DECISION_KEYS = {"dismissed": "console.decision.dismissed", "confirmed": "console.decision.confirmed"}
ANSWER_KEYS = {"confirmed": "console.supervision_answer.confirmed",
               "different": "console.supervision_answer.different",
               "not_mine": "console.supervision_answer.not_mine",
               "unreachable": "console.supervision_answer.unreachable"}
EVIDENCE_KEYS = {"first": "console.evidence.first", "last": "console.evidence.last",
                 "ratings": "console.evidence.ratings", "source": "console.evidence.source",
                 "densest": "console.evidence.densest", "minutes": "console.evidence.minutes",
                 "seconds": "console.evidence.seconds", "quickest_seconds": "console.evidence.quickest_seconds",
                 "applicants": "console.evidence.applicants", "channel": "console.evidence.channel",
                 "device_share": "console.evidence.device_share", "hall_share": "console.evidence.hall_share",
                 "hall_code": "console.evidence.hall_code", "bad_reviews": "console.evidence.bad_reviews",
                 "cases": "console.evidence.cases", "agencies": "console.evidence.agencies",
                 "recent_bad_share": "console.evidence.recent_bad_share",
                 "history_bad_share": "console.evidence.history_bad_share",
                 "recent_ratings": "console.evidence.recent_ratings",
                 "history_ratings": "console.evidence.history_ratings", "z": "console.evidence.z",
                 "direction": "console.evidence.direction", "call_id": "console.evidence.call_id",
                 "answered_by": "console.evidence.answered_by"}
VALUE_KEYS = {"source": {"device": "console.source.device", "terminal": "console.source.terminal",
                          "window": "console.source.window"},
              "direction": {"more_bad": "console.direction.more_bad", "less_bad": "console.direction.less_bad"},
              "channel": CHANNEL_KEYS}
SHARES = ("device_share", "hall_share", "recent_bad_share", "history_bad_share")


def may_decide(view: View) -> bool:
    return view.who.user.role in decisions.MAY_DECIDE


def may_answer(view: View) -> bool:
    return view.who.user.role in draws.MAY_ANSWER


def _evidence(view: View, evidence: dict[str, Any]) -> list[tuple[str, str]]:
    """The evidence in the reader's words: named facts, instants in local time, shares in percent."""
    out = []
    for key, value in evidence.items():
        if key not in EVIDENCE_KEYS:
            continue  # a fact this page does not name yet: the API has it
        if key in ("first", "last") and isinstance(value, str):
            shown = view.when(datetime.fromisoformat(value))
        elif key in SHARES and isinstance(value, int | float):
            shown = f"{value * 100:.1f}%"
        elif key in VALUE_KEYS:
            shown = view.t(VALUE_KEYS[key][value]) if value in VALUE_KEYS[key] else str(value)
        else:
            shown = str(value)
        out.append((view.t(EVIDENCE_KEYS[key]), shown))
    return out


def _signal(view: View, s: Signal, orders: list[WorkOrder]) -> dict[str, Any]:
    """The signal as its card shows it; `orders`: the work orders of its bad reviews, where the agency may appeal a
    review a confirmed signal shows false (the appeal path, Shantou art. 37)."""
    return {"orders": [(wo.id, wo.agency_name) for wo in orders if view.who.actor.sees(wo.agency_code)],
            "id": s.id, "kind": view.t(KIND_KEYS[s.kind]) if s.kind in KIND_KEYS else s.kind,
            "agency_code": s.agency_code, "staff_id": s.staff_id, "cases": list(s.cases or []),
            "evidence": _evidence(view, s.evidence or {}), "detected": view.when(s.detected_at),
            "detected_iso": s.detected_at.isoformat(), "status": s.status,
            "status_label": view.t(STATUS_KEYS[s.status]),
            "decided_by": view.actor(s.decided_by) if s.decided_by else None, "decided_at": view.when(s.decided_at),
            "note": view.free(s.note)}


async def signals_page(request: web.Request, *, status: int = 200, error: str | None = None) -> web.Response:
    who = await console_auth.require(request)
    view = View(request, who)
    title = view.t("console.signals")
    if not may_decide(view):
        return view.page("console_signals.html", title, "signals", http_status=403, signals=[], statuses=[],
                         status="open", csrf="", error=view.t("console.not_your_role"))
    shown = request.query.get("status", "open")
    shown = shown if shown in STATUS_KEYS else "open"
    async with view.rt.db.read() as session:
        rows = await signal_store.listing(session, signal_store.Filters(status=shown, agencies=who.actor.agencies),
                                          LIMIT)
        orders = await work_order_store.for_evaluations(session, sorted({e for s in rows for e in s.evaluation_ids}))
    done = {"signal": view.t("console.done.signal"), "callbacks": view.t("console.done.signal_callbacks")
            }.get(request.query.get("done", ""))
    return view.page("console_signals.html", title, "signals", http_status=status, error=error, flash=done,
                     signals=[_signal(view, s, [wo for wo in orders if wo.evaluation_id in s.evaluation_ids])
                              for s in rows], status=shown, csrf=who.session.csrf,
                     statuses=[(s, view.t(k)) for s, k in STATUS_KEYS.items()],
                     decisions=[(d, view.t(k)) for d, k in DECISION_KEYS.items()])


Act = Callable[[Runtime, int, dict[str, Any], Actor, datetime, str | None], Awaitable[object]]
Page = Callable[..., Awaitable[web.Response]]  # signals_page or calls_page: (request, status=, error=)


async def _post(request: web.Request, fields: tuple[str, ...], act: Act, page: Page, done: str) -> web.StreamResponse:
    """A form of these pages: the session and its CSRF token, the action through the same rules as the API, then
    back to the page with what was done, or the page again with the refusal in the reader's words."""
    who = await console_auth.require(request)
    await console_auth.check_csrf(request, who)
    view = View(request, who)
    form = await request.post()
    body = {k: str(form.get(k) or "").strip() or None for k in fields}
    try:
        await act(view.rt, parse_id(request.match_info["id"]) or 0, body, who.actor, now(request), request.remote)
    except Refusal as exc:
        status = refusals.status_of(exc)
        return await page(request, status=status, error=view.t(REFUSED_KEYS.get(status, "console.refused_input")))
    raise web.HTTPSeeOther(done)


async def decide(request: web.Request) -> web.StreamResponse:
    return await _post(request, ("decision", "note"), decisions.decide, signals_page,
                       "/console/signals?" + urlencode({"done": "signal"}))


async def call_back(request: web.Request) -> web.StreamResponse:
    async def act(rt: Runtime, signal_id: int, _body: dict[str, Any], who: Actor, at: datetime,
                  address: str | None) -> object:
        return await draws.call_back(rt, signal_id, who, at, address)

    return await _post(request, (), act, signals_page, "/console/signals?" + urlencode({"done": "callbacks"}))


def _call(view: View, row: supervision_store.CallRow, revealed: str | None) -> dict[str, Any]:
    c, case, e = row.call, row.case, row.evaluation
    return {"id": c.id, "case_no": case.case_no, "item_name": case.item_name, "agency_name": case.agency_name,
            "staff_name": case.staff_name, "grade_label": view.t(f"grade.{e.grade}"),
            "channel": view.t(CHANNEL_KEYS[e.channel]) if e.channel in CHANNEL_KEYS else e.channel,
            "rated_at": view.when(e.created_at), "phone_masked": row.phone_masked,
            "revealed": revealed if revealed else None}


async def calls_page(request: web.Request, *, status: int = 200, error: str | None = None,
                     revealed: tuple[int, str] | None = None) -> web.Response:
    who = await console_auth.require(request)
    view = View(request, who)
    title = view.t("console.supervision")
    if not may_answer(view):
        return view.page("console_supervision.html", title, "supervision", http_status=403, calls=[], csrf="",
                         answers=[], error=view.t("console.not_your_role"))
    async with view.rt.db.read() as session:
        rows = await supervision_store.calls(session, "pending", None, who.actor.agencies, LIMIT)
    done = view.t("console.done.supervision") if request.query.get("done") == "supervision" else None
    shown = [_call(view, r, revealed[1] if revealed and revealed[0] == r.call.id else None) for r in rows]
    return view.page("console_supervision.html", title, "supervision", http_status=status, error=error, flash=done,
                     calls=shown, csrf=who.session.csrf, answers=[(a, view.t(k)) for a, k in ANSWER_KEYS.items()])


async def reveal(request: web.Request) -> web.Response:
    """The drawn rater's whole number, to call: written in the audit table (who, when, which call)."""
    who = await console_auth.require(request)
    await console_auth.check_csrf(request, who)
    view = View(request, who)
    call_id = parse_id(request.match_info["id"]) or 0
    if not may_answer(view):
        return await calls_page(request, status=403, error=view.t("console.not_your_role"))
    stamp = now(request)
    async with view.rt.db.write() as session:
        row = await supervision_store.call(session, call_id)
        if row is None or not who.actor.sees(row.call.agency_code):
            return await calls_page(request, status=404, error=view.t("console.not_found"))
        contact = await session.get(Contact, row.case.phone_contact_id) if row.case.phone_contact_id else None
        if contact is None:
            return await calls_page(request, status=404, error=view.t("console.no_phone"))
        number = view.rt.sealer.open(contact.address_sealed)
        await audit.record(session, stamp, who.actor.name, audit.REVEAL, target=("supervision_call", call_id),
                           details={"masked": mask_phone(number), "case_no": row.case.case_no,
                                    "agency_code": row.call.agency_code, "role": who.user.role},
                           address=request.remote)
    return await calls_page(request, revealed=(call_id, number))


async def answer(request: web.Request) -> web.StreamResponse:
    return await _post(request, ("answer", "note"), draws.answer, calls_page,
                       "/console/supervision?" + urlencode({"done": "supervision"}))


def setup(app: web.Application) -> None:
    app.router.add_get("/console/signals", signals_page)
    app.router.add_post("/console/signals/{id}/decide", decide)
    app.router.add_post("/console/signals/{id}/callbacks", call_back)
    app.router.add_get("/console/supervision", calls_page)
    app.router.add_post("/console/supervision/{id}/reveal", reveal)
    app.router.add_post("/console/supervision/{id}/answer", answer)
