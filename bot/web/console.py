"""The 12345 agents' console (GET /console/): the callback queue, the work orders of an agency, one
work order with its forms, and the dashboard.

The console is a client of the same rules as the API: every action goes through
bot.work_orders.lifecycle.act with the user's role and jurisdiction, so the console can do nothing the API
would refuse. Pages work without JavaScript (forms post and redirect back); only the dashboard's
charts need it, and its tables carry the same figures without.

The rater's number is shown masked; an agent who must call reveals it with a click, which is
written in the work order's history (who, when) and in the audit table, and only at the callback step.
The words people typed (the review, notes, an appeal's reason) are masked the same way
(bot/infra/privacy.py), and whole only in the answer to that click: a rater may have written the number to
call back at. Admins read the audit table at /console/audit.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.duties import official_calendar
from bot.figures import rankings as figures
from bot.figures.rankings import group_json
from bot.infra import audit
from bot.infra.i18n import local_day, local_time
from bot.infra.limits import CONTROL_MESSAGE, clamp_day, day_bound, parse_id
from bot.infra.privacy import mask_text
from bot.infra.refusals import Invalid, NotNow, Refusal
from bot.infra.runtime import Runtime
from bot.supervision.decisions import MAY_DECIDE
from bot.supervision.draws import MAY_ANSWER
from bot.web import console_auth, pages, refusals
from bot.web.common import now, runtime
from bot.web.console_auth import Who
from bot.work_orders import deadlines as work_order_deadlines
from bot.work_orders import lifecycle as work_orders
from dialogs.addresses import mask_phone
from store import audit as audit_store
from store import cases as case_store
from store import contacts as contact_store
from store import evaluations as evaluation_store
from store import stats
from store import work_orders as store
from store.models import Case, Contact, Evaluation, WorkOrder, WorkOrderEvent

QUEUE_LIMIT = 200
LIST_LIMIT = 300
AUDIT_PAGE = 50
ROLE_KEYS = {"l1": "console.role.l1", "l2": "console.role.l2", "agent": "console.role.agent",
             "admin": "console.role.admin"}
STATUS_KEYS = {"created": "console.status.created", "dispatched": "console.status.dispatched",
               "rectified": "console.status.rectified", "reviewed": "console.status.reviewed",
               "closed": "console.status.closed"}
OUTCOME_KEYS = {"satisfied": "console.outcome.satisfied", "basically_satisfied": "console.outcome.basically_satisfied",
                "unresolved": "console.outcome.unresolved", "unreachable": "console.outcome.unreachable",
                "excluded": "console.outcome.excluded"}
RESULT_KEYS = {"satisfied": "console.result.satisfied", "basically_satisfied": "console.result.basically_satisfied",
               "dissatisfied": "console.result.dissatisfied", "unreachable": "console.result.unreachable"}
ACTION_KEYS = {"dispatch": "console.action.dispatch", "rectify": "console.action.rectify",
               "review": "console.action.review", "callback": "console.action.callback",
               "appeal": "console.action.appeal", "decide-appeal": "console.action.decide_appeal",
               "request-extension": "console.action.request_extension",
               "decide-extension": "console.action.decide_extension", "contact": "console.action.contact"}
APPEAL_KEYS = {"pending": "console.appeal.pending", "upheld": "console.appeal.upheld",
               "rejected": "console.appeal.rejected"}
EVENT_KEYS = {"create": "console.event.create", "dispatch": "console.event.dispatch",
              "rectify": "console.event.rectify", "review": "console.event.review",
              "callback": "console.event.callback", "reopen": "console.event.reopen",
              "appeal": "console.event.appeal", "decide-appeal": "console.event.decide_appeal",
              "overdue": "console.event.overdue", "blacklist": "console.event.blacklist",
              "call": "console.event.call", "call-not-reached": "console.event.call_not_reached",
              "callback-sms": "console.event.callback_sms", "reveal": "console.event.reveal",
              "request-extension": "console.event.request_extension",
              "decide-extension": "console.event.decide_extension", "contact": "console.event.contact",
              "appeal-overdue": "console.event.appeal_overdue", "contact-overdue": "console.event.contact_overdue"}
REFUSED_KEYS = {403: "console.refused_role", 404: "console.refused_missing", 409: "console.refused_state",
                422: "console.refused_input"}
DONE_KEYS = {"dispatch": "console.done.dispatch", "rectify": "console.done.rectify", "review": "console.done.review",
             "callback": "console.done.callback", "appeal": "console.done.appeal",
             "decide-appeal": "console.done.decide_appeal", "request-extension": "console.done.request_extension",
             "decide-extension": "console.done.decide_extension", "contact": "console.done.contact"}
EXTENSION_KEYS = {"pending": "console.extension.pending", "approved": "console.extension.approved",
                  "refused": "console.extension.refused", "lapsed": "console.extension.lapsed"}
CHANNEL_KEYS = {"sms": "console.channel.sms", "wechat": "console.channel.wechat",
                "miniprogram": "console.channel.miniprogram", "phone": "console.channel.phone",
                "web": "console.channel.web", "qr": "console.channel.qr", "hall": "console.channel.hall",
                "terminal": "console.channel.terminal", "callback": "console.channel.callback",
                "default": "console.channel.default"}
AUDIT_ACTION_KEYS = {audit.REVEAL: "console.audit_action.number_reveal",
                     audit.DIAL: "console.audit_action.number_dial",
                     audit.EXPORT: "console.audit_action.export_unmasked",
                     audit.USER_CREATE: "console.audit_action.user_create",
                     audit.USER_DISABLE: "console.audit_action.user_disable",
                     audit.USER_PASSWORD: "console.audit_action.user_password",
                     audit.USER_UPDATE: "console.audit_action.user_update",
                     audit.SNAPSHOT: "console.audit_action.snapshot_publish",
                     audit.APPEAL: "console.audit_action.appeal_decide",
                     audit.CALENDAR: "console.audit_action.calendar_import",
                     audit.SIGNAL: "console.audit_action.signal_decide",
                     audit.DRAW: "console.audit_action.supervision_draw",
                     audit.SUPERVISORY_ANSWER: "console.audit_action.supervision_answer"}
# Who wrote a history event or an audit row, when it was not a console user: the service, the business systems'
# token, the command line (cli:<operator>), a rater's own answer to a callback (bot/callback_sms, callback_calls).
ACTOR_KEYS = {"system": "console.actor.system", "api": "console.actor.api", "cli": "console.actor.cli",
              "citizen:sms": "console.actor.citizen_sms", "citizen:call": "console.actor.citizen_call"}
AUDIT_TARGET_KEYS = {"work_order": "console.audit_target.work_order", "user": "console.audit_target.user",
                     "export": "console.audit_target.export", "snapshot": "console.audit_target.snapshot",
                     "calendar": "console.audit_target.calendar", "signal": "console.audit_target.signal",
                     "supervision_draw": "console.audit_target.supervision_draw",
                     "supervision_call": "console.audit_target.supervision_call"}
CALENDAR_KEYS = {"this": "console.calendar_this_year", "next": "console.calendar_next_year"}
EXPORT_KEYS = {"evaluations": "console.export_evaluations", "work-orders": "console.export_work_orders"}
EXPORT_FORMATS = {"csv": "CSV", "xlsx": "XLSX"}  # file types: the same name in every language
# The fields of the console's forms, as a refusal names them (bot/infra/refusals.py: `errors`).
FIELD_KEYS = {"note": "console.field.note", "reason": "console.field.reason", "result": "console.callback_result",
              "upheld": "console.field.upheld", "due_at": "console.field.due_at",
              "approved": "console.field.approved"}
ACTION_FIELD_KEYS = {("note", "rectify"): "console.field.rectify_note",
                     ("reason", "request-extension"): "console.field.extension_reason",
                     ("note", "contact"): "console.field.contact_note"}
# `to_rate` beside `cases`: the participation rate's base (bot/figures/rankings.py), which leaves out the cases whose
# rating was not adopted on appeal and the online consultations nobody rated (store/stats.py)
STAT_COLUMNS = (("cases", "console.stat.cases"), ("to_rate", "console.stat.to_rate"), ("rated", "console.stat.rated"),
                ("participation_rate", "console.stat.participation_rate"),
                ("mean_score", "console.stat.mean_score"), ("bad_reviews", "console.stat.bad_reviews"),
                ("rectification_rate", "console.stat.rectification_rate"), ("overdue", "console.stat.overdue"),
                ("composite_score", "console.stat.composite_score"))


class View:
    """Rendering one console page for one user: their language, their labels, the shared frame."""

    def __init__(self, request: web.Request, who: Who) -> None:
        self.request, self.who = request, who
        self.rt: Runtime = runtime(request)
        self.locale = pages.locale_of(request)
        self.whole = False  # the answer to a reveal: the words people typed shown whole

    def free(self, text: str | None) -> str | None:
        """A text someone typed, as this page may show it: masked, unless the reveal rule allows it whole."""
        return text if self.whole else mask_text(text)

    def t(self, key: str, **params: Any) -> str:
        text = self.rt.catalogs.text(self.locale, key)
        return text.format(**params) if params else text

    def when(self, value: datetime | None) -> str:
        if value is None:
            return ""
        return local_time(value, self.rt.policy.tz, self.locale, "short")

    def day(self, value: datetime) -> str:
        return local_day(value, self.rt.policy.tz, self.locale)

    def actor(self, name: str) -> str:
        """Who acted, in words: a user by their name, the service and the other doors by what they are."""
        if name in ACTOR_KEYS:
            return self.t(ACTOR_KEYS[name])
        if name.startswith("cli:"):  # usernames hold no colon (bot/users.USERNAME)
            return self.t("console.actor.cli_user", name=name[4:])
        return name

    def nav(self) -> list[tuple[str, str, str]]:
        items = []
        if self.who.actor.may("callback"):
            items.append(("/console/queue", self.t("console.queue"), "queue"))
        items.append(("/console/orders", self.t("console.orders"), "orders"))
        items.append(("/console/dashboard", self.t("console.dashboard"), "dashboard"))
        if self.who.user.role in MAY_DECIDE:  # the supervision queue (bot/web/console_supervision.py)
            items.append(("/console/signals", self.t("console.signals"), "signals"))
        if self.who.user.role in MAY_ANSWER:
            items.append(("/console/supervision", self.t("console.supervision"), "supervision"))
        if self.who.user.role == "admin":
            items.append(("/console/audit", self.t("console.audit"), "audit"))
            items.append(("/console/hall", self.t("console.hall"), "hall"))  # bot/web/console_hall.py
        return items

    def page(self, template: str, title: str, section: str, http_status: int = 200, **context: Any
             ) -> web.Response:
        context.setdefault("flash", None)
        context.setdefault("error", None)
        unknown = official_calendar.unknown_year(self.rt, now(self.request))  # from 1 November: act before New Year
        calendar_notice = self.t(CALENDAR_KEYS[unknown[0]], year=unknown[1]) if unknown else None
        return pages.render(self.request, template, self.locale, http_status, who=self.who, title=title,
                            section=section, nav=self.nav(), role_key=ROLE_KEYS[self.who.user.role],
                            calendar_notice=calendar_notice, **context)

    def reason(self, code: str) -> str:
        return self.rt.catalogs.reason_label(self.locale, code, self.rt.policy.reasons)

    def order(self, wo: WorkOrder, case: Case | None, evaluation: Evaluation | None,
              phone_masked: str | None = None, facts: work_order_deadlines.Facts | None = None) -> dict[str, Any]:
        return {**self.deadlines(wo, facts or work_order_deadlines.NO_FACTS),
            "id": wo.id, "case_no": case.case_no if case else "", "item_name": case.item_name if case else "",
            "agency_name": wo.agency_name, "completed": self.day(case.completed_at) if case else "",
            "staff_name": wo.staff_name, "grade_label": self.t(f"grade.{wo.grade}"),
            "reasons": [self.reason(r) for r in wo.reasons or []],
            "text": self.free(evaluation.text) if evaluation else None,
            "rated_at": self.when(evaluation.created_at) if evaluation else "",
            "status": wo.status, "status_label": self.t(STATUS_KEYS[wo.status]),
            "outcome_label": self.t(OUTCOME_KEYS[wo.outcome]) if wo.outcome in OUTCOME_KEYS else None,
            "appeal_label": self.t(APPEAL_KEYS[wo.appeal_status]) if wo.appeal_status in APPEAL_KEYS else None,
            "appeal_reason": self.free(wo.appeal_reason), "reopened": wo.reopened, "unreachable": wo.unreachable,
            "due": self.when(wo.due_at), "due_iso": wo.due_at.isoformat() if wo.due_at else "",
            "overdue": wo.overdue, "phone_masked": phone_masked, "rectification": None,
        }

    def deadlines(self, wo: WorkOrder, facts: work_order_deadlines.Facts) -> dict[str, Any]:
        """The deadlines beside the steps (bot/work_orders/deadlines.py), as the pages show them: the appeal's
        decision, the contact with the rater and the extension asked."""
        rt = self.rt
        decide_by = work_order_deadlines.appeal_decide_by(rt, wo) if wo.appeal_status == "pending" else None
        contact = None
        if work_order_deadlines.contact_days(rt) and facts.round_start is not None:
            contact = {"due": self.when(work_order_deadlines.contact_due(rt, facts)),
                       "at": self.when(facts.contacted_at), "overdue": facts.contact_overdue}
        ext = facts.extension
        return {
            "appeal_decide_by": self.when(decide_by), "appeal_overdue": facts.appeal_overdue, "contact": contact,
            "extension": None if ext is None else {
                "label": self.t(EXTENSION_KEYS[ext.status]), "status": ext.status, "until": self.when(ext.due_at),
                "reason": self.free(ext.reason), "note": self.free(ext.note)},
        }


async def _loaded(session: AsyncSession, rows: list[WorkOrder]
                  ) -> tuple[dict[int, Case], dict[int, Evaluation], dict[int, str]]:
    """The cases, reviews and masked phones of some work orders, in three queries."""
    cases = await case_store.by_ids(session, list({wo.case_id for wo in rows}))
    evaluations = await evaluation_store.by_ids(session, list({wo.evaluation_id for wo in rows}))
    masks = await contact_store.masks(session, [c.phone_contact_id for c in cases.values()])
    return cases, evaluations, masks


def _phone_mask(case: Case | None, masks: dict[int, str]) -> str | None:
    return masks.get(case.phone_contact_id) if case and case.phone_contact_id else None


async def home(request: web.Request) -> web.StreamResponse:
    who = await console_auth.require(request)
    raise web.HTTPSeeOther("/console/queue" if who.actor.may("callback") and who.user.role != "l1"
                           else "/console/orders")


def _flash(view: View) -> str | None:
    done = view.request.query.get("done")
    return view.t(DONE_KEYS[done]) if done in DONE_KEYS else None


async def queue(request: web.Request) -> web.Response:
    who = await console_auth.require(request)
    view = View(request, who)
    if not who.actor.may("callback"):
        return view.page("console_queue.html", view.t("console.queue"), "queue", http_status=403, orders=[],
                         error=view.t("console.not_your_role"))
    filters = store.Filters(status="reviewed", agent_queue=True, agencies=who.actor.agencies)
    async with view.rt.db.read() as session:
        rows = await store.listing(session, filters, QUEUE_LIMIT, by_deadline=True)
        cases, evaluations, masks = await _loaded(session, rows)
    orders = [view.order(wo, cases.get(wo.case_id), evaluations.get(wo.evaluation_id),
                         _phone_mask(cases.get(wo.case_id), masks)) for wo in rows]
    return view.page("console_queue.html", view.t("console.queue"), "queue", orders=orders, flash=_flash(view))


async def orders(request: web.Request) -> web.Response:
    who = await console_auth.require(request)
    view = View(request, who)
    status = request.query.get("status", "open")
    if status not in ("", "open", *STATUS_KEYS):
        status = "open"
    overdue = request.query.get("overdue") == "true"
    filters = store.Filters(status=status if status in STATUS_KEYS else None, open_only=status == "open",
                            overdue=True if overdue else None, agencies=who.actor.agencies)
    async with view.rt.db.read() as session:
        rows = await store.listing(session, filters, LIST_LIMIT, by_deadline=True)
        cases, evaluations, _masks = await _loaded(session, rows)
        facts = await work_order_deadlines.facts_for(session, rows)
    docs = [view.order(wo, cases.get(wo.case_id), evaluations.get(wo.evaluation_id), facts=facts.get(wo.id or 0))
            for wo in rows]
    return view.page("console_orders.html", view.t("console.orders"), "orders", orders=docs, status=status,
                     overdue=overdue, statuses=[(s, view.t(k)) for s, k in STATUS_KEYS.items()], flash=_flash(view))


def _id(request: web.Request) -> int:
    """The work order of the path; one that is not an id (or beyond the store's ids) is 0, which no work order
    has: the page says there is no such work order, as for any other."""
    return parse_id(request.match_info["id"]) or 0


def _back(value: str | None, wo_id: int) -> str:
    """Where a form returns: the queue it came from, or the work order itself (never another site)."""
    return value if value in ("/console/queue", "/console/orders") else f"/console/orders/{wo_id}"


def _script(view: View, order: dict[str, Any]) -> str:
    return view.t("console.script_text", agency=order["agency_name"], item=order["item_name"],
                  date=order["completed"], grade=order["grade_label"],
                  reasons=view.t("console.list_sep").join(order["reasons"]) or "-",
                  rectification=order["rectification"] or "-")


def _may_reveal(view: View, wo: WorkOrder) -> bool:
    return view.who.actor.may("callback") and wo.status == "reviewed"


async def _detail(view: View, wo_id: int, *, status: int = 200, error: str | None = None,
                  revealed: str | None = None, form: dict[str, str] | None = None) -> web.Response:
    view.whole = revealed is not None
    async with view.rt.db.read() as session:
        wo = await store.by_id(session, wo_id)
        if wo is None or not view.who.actor.sees(wo.agency_code):
            # Another jurisdiction's work order looks the same as one that does not exist.
            return view.page("console_orders.html", view.t("console.orders"), "orders", http_status=404, orders=[],
                             status="open", overdue=False, statuses=[], error=view.t("console.not_found"))
        cases, evaluations, masks = await _loaded(session, [wo])
        events = await store.events(session, wo_id)
    case, evaluation = cases.get(wo.case_id), evaluations.get(wo.evaluation_id)
    facts = work_order_deadlines.facts_from(events)
    order = view.order(wo, case, evaluation, _phone_mask(case, masks), facts)
    notes = [e.note for e in events if e.action == "rectify" and e.note]
    order["rectification"] = view.free(notes[-1]) if notes else None
    can = work_orders.allowed(view.rt, wo, evaluation, now(view.request), facts) if evaluation else []
    actions = [a for a in can if view.who.actor.may(a)]
    history = [{"at": view.when(e.at), "at_iso": e.at.isoformat(), "label": view.t(EVENT_KEYS[e.action])
                if e.action in EVENT_KEYS else e.action, "actor": view.actor(e.actor), "note": view.free(e.note),
                "detail": _event_detail(view, e)} for e in events]
    show_phone = view.who.actor.may("callback")
    return view.page(
        "console_order.html", view.t("console.order_title", id=wo_id), "queue" if wo.status == "reviewed"
        else "orders", http_status=status, o=order, actions=actions, history=history, error=error,
        action_labels={a: view.t(k) for a, k in ACTION_KEYS.items()},
        results=[(r, view.t(k)) for r, k in RESULT_KEYS.items()], show_phone=show_phone,
        can_reveal=_may_reveal(view, wo), revealed=revealed,
        revealed_display=_national(revealed) if revealed else None,
        script=_script(view, order) if "callback" in actions else None,
        back="/console/queue" if wo.status == "reviewed" and wo.agent_queue else f"/console/orders/{wo_id}",
        form={"action": "", "note": "", "reason": "", "result": "", "due_at": "", **(form or {})},
        flash=_flash(view))


def _event_detail(view: View, e: WorkOrderEvent) -> str | None:
    data = e.data or {}
    if e.action == "callback" and data.get("result") in RESULT_KEYS:
        return view.t(RESULT_KEYS[data["result"]])
    if e.action in ("request-extension", "decide-extension"):
        return _extension_detail(view, e.action, data)
    if data.get("outcome") in OUTCOME_KEYS:
        return view.t(OUTCOME_KEYS[data["outcome"]])
    return None


def _extension_detail(view: View, action: str, data: dict[str, Any]) -> str | None:
    """An extension's event in words: the deadline asked for, and the answer."""
    try:
        until = view.when(datetime.fromisoformat(str(data.get("due_at"))))
    except ValueError:
        return None
    if action == "request-extension":
        return view.t("console.extension_asked", until=until)
    return view.t("console.extension_granted", until=until) if data.get("approved") \
        else view.t("console.extension.refused")


def _national(e164: str) -> str:
    digits = e164[3:] if e164.startswith("+86") else e164
    return f"{digits[:3]} {digits[3:7]} {digits[7:]}" if len(digits) == 11 else digits


async def order(request: web.Request) -> web.Response:
    who = await console_auth.require(request)
    return await _detail(View(request, who), _id(request))


async def reveal(request: web.Request) -> web.Response:
    who = await console_auth.require(request)
    await console_auth.check_csrf(request, who)
    view = View(request, who)
    wo_id = _id(request)
    stamp = now(request)
    async with view.rt.db.write() as session:
        wo = await store.by_id(session, wo_id, lock=view.rt.db.locks_rows)
        if wo is None or not who.actor.sees(wo.agency_code):
            return await _detail(view, wo_id)
        if not _may_reveal(view, wo):
            return await _detail(view, wo_id, status=403, error=view.t("console.reveal_refused"))
        case = await case_store.by_id(session, wo.case_id)
        contact = await session.get(Contact, case.phone_contact_id) if case and case.phone_contact_id else None
        if contact is None:
            return await _detail(view, wo_id, status=404, error=view.t("console.no_phone"))
        number = view.rt.sealer.open(contact.address_sealed)
        await store.log(session, wo, "reveal", who.actor.name, wo.status, wo.status, stamp,
                        data={"masked": mask_phone(number)})
        await audit.record(session, stamp, who.actor.name, audit.REVEAL, target=("work_order", wo_id),
                           details={"masked": mask_phone(number), "case_no": case.case_no if case else None,
                                    "agency_code": wo.agency_code, "role": who.user.role},
                           address=request.remote)
    return await _detail(view, wo_id, revealed=number)


async def act(request: web.Request) -> web.StreamResponse:
    who = await console_auth.require(request)
    await console_auth.check_csrf(request, who)
    view = View(request, who)
    wo_id = _id(request)
    action = request.match_info["action"]
    if action not in ACTION_KEYS:
        return await _detail(view, wo_id, status=404, error=view.t("console.refused_action"))
    form = await request.post()
    body: dict[str, Any] = {}
    for name in ("note", "reason", "result", "due_at"):
        value = str(form.get(name) or "").strip()
        if value:
            body[name] = value
    if action == "decide-appeal":
        upheld = form.get("upheld")
        body["upheld"] = {"true": True, "false": False}.get(str(upheld), upheld)
    if action == "decide-extension":
        approved = form.get("approved")
        body["approved"] = {"true": True, "false": False}.get(str(approved), approved)
    try:
        await work_orders.act(view.rt, wo_id, action, body, who.actor, now(request), address=request.remote)
    except Refusal as exc:
        message = view.t(REFUSED_KEYS.get(refusals.status_of(exc), "console.refused_input"))
        detail = await _refusal(view, wo_id, action, exc)
        return await _detail(view, wo_id, status=refusals.status_of(exc),
                             error=view.t("console.refused_detail", message=message, detail=detail) if detail
                             else message, form={"action": action, **{k: str(v) for k, v in body.items()}})
    back = _back(str(form.get("back") or ""), wo_id)
    raise web.HTTPSeeOther(f"{back}?{urlencode({'done': action})}")


async def _refusal(view: View, wo_id: int, action: str, exc: Refusal) -> str | None:
    """What was wrong, in the reader's words: the work order's status now (not now), the field and its problem."""
    if isinstance(exc, NotNow):
        async with view.rt.db.read() as session:
            wo = await store.by_id(session, wo_id)
        if wo is not None and wo.status in STATUS_KEYS:
            return view.t("console.refused_status", status=view.t(STATUS_KEYS[wo.status]))
    if isinstance(exc, Invalid) and exc.errors:
        name, problem = exc.errors[0].get("field", ""), exc.errors[0].get("message", "")
        key = ACTION_FIELD_KEYS.get((name, action)) or FIELD_KEYS.get(name)
        if key is None:
            return None
        field = view.t(key)
        if problem == "required":
            return view.t("console.field_required", field=field)
        if problem == CONTROL_MESSAGE:
            return view.t("page.control_characters", field=field)
        return view.t("console.field_invalid", field=field)
    return None


def _day_bound(value: str | None, tz: Any, *, end: bool) -> tuple[str, datetime | None]:
    """A local day of the form, clamped to the accepted days (bot/infra/limits.py): (as shown, the bound)."""
    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return "", None
    return clamp_day(day).isoformat(), day_bound(day, tz, end=end)


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name in ("participation_rate", "rectification_rate"):  # fractions; `to_rate` is a count of cases
        return f"{value * 100:.1f}%"
    if name in ("mean_score", "composite_score"):
        return f"{value:.2f}"
    return str(value)


async def dashboard(request: web.Request) -> web.Response:
    who = await console_auth.require(request)
    view = View(request, who)
    tz = view.rt.policy.tz
    start_text, start = _day_bound(request.query.get("from"), tz, end=False)
    end_text, end = _day_bound(request.query.get("to"), tz, end=True)
    tables = []
    async with view.rt.db.read() as session:
        for by, title_key, key_key in (("agency", "console.by_agency", "console.agency"),
                                       ("channel", "console.by_channel", "console.channel")):
            groups = await stats.figures(session, by, start, end, who.actor.agencies,  # type: ignore[arg-type]
                                         dialect=view.rt.db.dialect)
            rows = []
            for g in groups:
                doc = group_json(g, view.rt.policy.statistics, by)
                name = doc["name"] or doc["key"] or view.t("console.unrated")
                if by == "channel":
                    name = view.t(CHANNEL_KEYS[g.key]) if g.key in CHANNEL_KEYS else view.t("console.unrated")
                rows.append({"name": name, **{c: _cell(c, doc[c]) for c, _k in STAT_COLUMNS}})
            names = {k: view.t(v) for k, v in CHANNEL_KEYS.items()} if by == "channel" else {}
            names[""] = view.t("console.unrated")  # the group of cases not rated yet (key null)
            tables.append({"by": by, "title": view.t(title_key), "key_label": view.t(key_key), "rows": rows,
                           "names_json": json.dumps(names, ensure_ascii=False)})
        ranked = await figures.rankings(session, view.rt.policy.statistics, "agency", "composite_score", start, end,
                                        who.actor.agencies, view.rt.db.dialect)
    ranking = [{"rank": r["rank"], "tied": r["tied"],
                "name": r["name"] or r["key"], "value": _cell("composite_score", r["value"])}
               for r in ranked["rankings"]]
    metrics = [{"name": "participation_rate", "kind": "rate", "label": view.t("console.stat.participation_rate")},
               {"name": "mean_score", "kind": "score", "label": view.t("console.stat.mean_score")},
               {"name": "bad_reviews", "kind": "count", "bad": True, "label": view.t("console.stat.bad_reviews")},
               {"name": "rectification_rate", "kind": "rate", "label": view.t("console.stat.rectification_rate")},
               {"name": "overdue", "kind": "count", "bad": True, "label": view.t("console.stat.overdue")}]
    query = "".join(f"&{k}={v}" for k, v in (("from", start_text), ("to", end_text)) if v)
    return view.page("console_dashboard.html", view.t("console.dashboard"), "dashboard", tables=tables,
                     columns=[(c, view.t(k)) for c, k in STAT_COLUMNS], start=start_text, end=end_text,
                     query=query, ranking=ranking, metrics_json=json.dumps(metrics, ensure_ascii=False))


async def audit_page(request: web.Request) -> web.Response:
    """The audit table for admins: newest first, AUDIT_PAGE rows a page, by local days and action."""
    who = await console_auth.require(request)
    view = View(request, who)
    title = view.t("console.audit")
    if who.user.role != "admin":
        return view.page("console_audit.html", title, "audit", http_status=403, events=[], older=None,
                         actions=[], action="", start="", end="", error=view.t("console.audit_admins_only"))
    tz = view.rt.policy.tz
    start_text, start = _day_bound(request.query.get("from"), tz, end=False)
    end_text, end = _day_bound(request.query.get("to"), tz, end=True)
    action = request.query.get("action", "")
    action = action if action in AUDIT_ACTION_KEYS else ""
    before_text = request.query.get("before", "")
    before = parse_id(before_text)  # beyond the ids (or not one): no bound, every row is before it
    filters = audit_store.Filters(start, end, action or None, before)
    async with view.rt.db.read() as session:
        rows = await audit_store.listing(session, filters, AUDIT_PAGE + 1)
    events = []
    for e in rows[:AUDIT_PAGE]:
        key = AUDIT_ACTION_KEYS.get(e.action)
        events.append({"id": e.id, "at": view.when(e.at), "at_iso": e.at.isoformat(), "actor": view.actor(e.actor),
                       "action": e.action, "label": view.t(key) if key else e.action,
                       "target": _audit_target(view, e.target_kind, e.target_id),
                       "details": json.dumps(e.details, ensure_ascii=False) if e.details is not None else "",
                       "address": e.address or ""})
    older = None
    if len(rows) > AUDIT_PAGE:
        query = {k: v for k, v in (("from", start_text), ("to", end_text), ("action", action)) if v}
        older = "/console/audit?" + urlencode({**query, "before": str(rows[AUDIT_PAGE - 1].id)})
    return view.page("console_audit.html", title, "audit", events=events, older=older, action=action,
                     actions=[(a, view.t(k)) for a, k in AUDIT_ACTION_KEYS.items()], start=start_text, end=end_text)


def _audit_target(view: View, kind: str | None, target_id: str | None) -> str:
    """What an audit row is about, in words: 工单 12, 用户 3, 导出 工单（XLSX）, 统计期 2026-11."""
    if not kind:
        return ""
    if kind == "export":
        what, _dot, fmt = (target_id or "").rpartition(".")
        if what in EXPORT_KEYS and fmt in EXPORT_FORMATS:
            target_id = view.t("console.export_file", what=view.t(EXPORT_KEYS[what]), format=EXPORT_FORMATS[fmt])
    label = view.t(AUDIT_TARGET_KEYS[kind]) if kind in AUDIT_TARGET_KEYS else kind
    return f"{label} {target_id}" if target_id else label


async def to_console(request: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect("/console/")


def setup(app: web.Application, rt: Runtime) -> None:
    console_auth.setup(app, rt)
    app.router.add_get("/console", to_console)
    app.router.add_get("/console/", home)
    app.router.add_get("/console/queue", queue)
    app.router.add_get("/console/orders", orders)
    app.router.add_get("/console/orders/{id}", order)
    app.router.add_post("/console/orders/{id}/reveal", reveal)
    app.router.add_post("/console/orders/{id}/act/{action}", act)
    app.router.add_get("/console/dashboard", dashboard)
    app.router.add_get("/console/audit", audit_page)
