"""The rating page behind every reminder's link (GET/POST /r/{token}).

A plain form that works without JavaScript (the reasons are always there, the server checks
everything) and better with it (static/rating.js shows the reasons only after a bad grade and checks
before sending). A stored rating answers with a redirect to the thank-you page (POST/redirect/GET),
so that reloading it cannot post the same rating again as a follow-up.

An item of a bundle (一件事, Shantou art. 31) is rated on its own unless the reader chooses the whole matter:
while another item of the bundle waits for its rating, the form offers both (this item only, checked, or the
whole 一件事) and lists the bundle's items with their agencies, marking those rated already, which keep their
rating. The choice is a plain radio group, so it works without JavaScript and in elder mode sits with the
grade on the first screen.

长辈模式 (elder mode, for the 互联网应用适老化 rules): large type, AAA contrast and big targets, and with
JavaScript one question a screen (the grade; after a bad grade the reasons, then the words). `?mode=elder`
turns it on and `?mode=standard` off, from a link on every rating page; the choice is remembered in a
cookie. Without JavaScript the elder page shows every question at once, as large.

Each page load carries a one-time form token (a hidden field). The first submission with it is acted on;
any other with the same token (a second tap, a copy that arrives at the same moment, a resent POST) gets
the same thank-you redirect and stores nothing. The token is remembered in the state for 24 hours once
it stored a rating; a real follow-up comes from a new page load, which has a new token. A POST without a
token (a page served before tokens, a script) is taken as before.
"""

from __future__ import annotations

import logging
import re
import secrets
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.infra import keys
from bot.infra.i18n import local_day, local_time
from bot.infra.limits import text_problem
from bot.infra.runtime import Runtime
from bot.infra.state import StateUnavailable
from bot.rating.ratings import (
    RaterBarred,
    RatingRefused,
    Scope,
    barred,
    closed_kind,
    followup_closes,
    openness,
    record,
)
from bot.web import pages
from bot.web.common import now, runtime
from dialogs import messages as m
from dialogs.grades import Grade
from dialogs.types import Reply
from store import cases as case_store
from store import evaluations as evaluation_store
from store.models import Case, Evaluation

TEXT_MAX = 1000
FORM_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
FORM_TOKEN_TTL = 24 * 3600
MODE_COOKIE = "hcp_mode"
DEVICE_COOKIE = "hcp_device"  # a random id per browser, hashed into a rating's device_hash (supervision signals)
DEVICE = re.compile(r"[A-Za-z0-9_-]{22}")
MODES = ("elder", "standard")
log = logging.getLogger("haochaping.web")


def _summary(rt: Runtime, locale: str, evaluations: list[Evaluation]) -> list[str]:
    """What the reader has given so far (their own ratings; a default says it was applied)."""
    lines = []
    for e in evaluations:
        if e.via == "callback" or e.status != "valid":
            continue
        key = "page.summary_default" if e.is_default else (
            "page.summary_followup" if e.is_followup else "page.summary_rating")
        lines.append(rt.catalogs.text(locale, key).format(
            grade=rt.catalogs.text(locale, f"grade.{e.grade}"), date=local_day(e.created_at, rt.policy.tz, locale)))
    return lines


def _query(request: web.Request, **more: str) -> str:
    """The page's own query for a link or a redirect: its language and mode, and `more`."""
    params = {k: v for k, v in request.query.items() if k in ("lang", "mode") or (k, v) == ("via", "qr")}
    params.update(more)
    return "?" + urlencode(params) if params else ""


def _source(request: web.Request, rt: Runtime) -> dict[str, str | None]:
    """Where a rating came from, for the supervision signals (bot/supervision): keyed hashes of the page's device
    cookie (a random id the page sets, nothing about the person) and of the client's address."""
    device = request.cookies.get(DEVICE_COOKIE, "")
    return {"device_hash": rt.sealer.lookup_hash("device", device) if DEVICE.fullmatch(device) else None,
            "client_hash": rt.sealer.lookup_hash("client", request.remote) if request.remote else None}


def _channel(request: web.Request) -> str:
    """`qr` when the page was opened from a receipt's QR code (its link carries ?via=qr: bot/web/qr_codes.py),
    else `web`."""
    return "qr" if request.query.get("via") == "qr" else "web"


def _elder(request: web.Request) -> bool:
    """Elder mode: ?mode= (the page's switch), then the switch remembered in the cookie."""
    asked = request.query.get("mode")
    if asked in MODES:
        return asked == "elder"
    return request.cookies.get(MODE_COOKIE) == "elder"


def _render(request: web.Request, template: str, locale: str, status: int, **context: Any) -> web.Response:
    """A rating page in the reader's mode, with the switch to the other one (this page again, its query kept);
    a mode chosen by ?mode= is remembered for the next link."""
    elder = _elder(request)
    thanks = {"thanks": request.query["thanks"]} if "thanks" in request.query else {}
    switch = request.path + _query(request, **thanks, mode="standard" if elder else "elder")
    response = pages.render(request, template, locale, status, elder=elder, mode_switch=switch, **context)
    asked = request.query.get("mode")
    rt = runtime(request)
    if not DEVICE.fullmatch(request.cookies.get(DEVICE_COOKIE, "")):
        response.set_cookie(DEVICE_COOKIE, secrets.token_urlsafe(16), max_age=365 * 24 * 3600, httponly=True,
                            samesite="Lax", secure=rt.settings.public_url.startswith("https://"), path="/r/")
    if asked in MODES:
        if asked == "elder":
            response.set_cookie(MODE_COOKIE, "elder", max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                                secure=rt.settings.public_url.startswith("https://"), path="/")
        else:
            response.del_cookie(MODE_COOKIE, path="/")
    return response


async def _open(request: web.Request) -> tuple[Runtime, str, Case | None]:
    """(runtime, locale, the case the token names, or None for a tampered or unknown token)."""
    rt = runtime(request)
    case_id = rt.links.case_id(request.match_info["token"])
    case = None
    if case_id is not None:
        async with rt.db.read() as session:
            case = await case_store.by_id(session, case_id)
    return rt, pages.locale_of(request, case.locale if case else pages.SOURCE), case


def _context(rt: Runtime, locale: str, case: Case) -> dict[str, Any]:
    return {"case": case, "completed": local_day(case.completed_at, rt.policy.tz, locale)}


def _notice(request: web.Request, rt: Runtime, locale: str, case: Case | None, kind: str, heading: str,
            lines: list[str], status: int = 200, summary: list[str] | None = None,
            followup_link: str | None = None) -> web.Response:
    context = _context(rt, locale, case) if case else {"case": None, "completed": ""}
    return _render(request, "rating_notice.html", locale, status, kind=kind, heading=heading, lines=lines,
                   summary=summary or [], followup_link=followup_link, **context)


def _invalid(request: web.Request, rt: Runtime, locale: str) -> web.Response:
    t = rt.catalogs.text
    return _notice(request, rt, locale, None, "invalid", t(locale, "page.invalid_heading"),
                   [t(locale, "page.invalid")], 404)


def _barred(request: web.Request, rt: Runtime, locale: str, case: Case, until: datetime) -> web.Response:
    text = rt.render(Reply(m.BARRED, {"until": until}), locale)
    return _notice(request, rt, locale, case, "barred", rt.catalogs.text(locale, "page.barred_heading"), [text], 403)


def _closed(request: web.Request, rt: Runtime, locale: str, case: Case, evaluations: list[Evaluation],
            status: int = 200) -> web.Response:
    """Nothing more to rate: used up (a rating and its follow-up) or expired (the window is over)."""
    t = rt.catalogs.text
    kind = closed_kind(evaluations)
    heading, line = ("page.used_heading", "page.used") if kind == "used" else ("page.expired_heading", "page.expired")
    return _notice(request, rt, locale, case, kind, t(locale, heading),
                   [t(locale, line)], status, summary=_summary(rt, locale, evaluations))


@dataclass(frozen=True)
class BundleItem:
    """One item of the reader's 一件事 as the form lists it."""

    item_name: str
    agency_name: str
    this: bool  # the item the link is for
    rated: bool  # rated already: a bundle rating leaves its rating as it is

    @property
    def key(self) -> str:
        """The catalog line that lists it: this item, an item the bundle rating goes to, or one it leaves."""
        return "page.bundle_this" if self.this else "page.bundle_rated" if self.rated else "page.bundle_item"


async def _bundle(session: AsyncSession, case: Case) -> list[BundleItem]:
    """The items of the case's bundle, this one first, when a bundle rating would rate more than this item
    (another item still waits for its rating); otherwise none, and the form offers no choice."""
    if not case.bundle_no:
        return []
    others = []
    for sibling in await case_store.siblings(session, case, "bundle_no"):
        assert sibling.id is not None
        rated = bool(await evaluation_store.for_case(session, sibling.id))
        others.append(BundleItem(sibling.item_name, sibling.agency_name, False, rated))
    if all(item.rated for item in others):
        return []
    return [BundleItem(case.item_name, case.agency_name, True, False), *others]


def _form(request: web.Request, rt: Runtime, locale: str, case: Case, evaluations: list[Evaluation],
          stamp: datetime, *, error: tuple[str, str] | None = None, chosen: dict[str, Any] | None = None,
          status: int = 200, form_token: str | None = None, bundle: list[BundleItem] | None = None
          ) -> web.Response:
    """The form; `error`: (what is wrong, the question it is about: grade, reasons or text)."""
    closes = followup_closes(rt, evaluations) if openness(rt, evaluations, stamp) == "followup" else None
    reasons = [(code, rt.catalogs.reason_label(locale, code, rt.policy.reasons)) for code in rt.policy.reasons]
    return _render(
        request, "rating.html", locale, status, grades=list(Grade), reasons=reasons,
        error=error[0] if error else None, error_step=error[1] if error else "grade",
        form_token=form_token or secrets.token_urlsafe(16),
        chosen=chosen or {"grade": None, "reasons": [], "text": None, "suggestion": None, "scope": "item"},
        bundle=bundle or [],
        followup_until=local_time(closes, rt.policy.tz, locale) if closes else None,
        summary=_summary(rt, locale, evaluations) if closes else [], **_context(rt, locale, case))


async def show(request: web.Request) -> web.Response:
    rt, locale, case = await _open(request)
    if case is None:
        return _invalid(request, rt, locale)
    assert case.id is not None
    stamp = now(request)
    async with rt.db.read() as session:
        evaluations = await evaluation_store.for_case(session, case.id)
        until = await barred(session, case, stamp)
        bundle = await _bundle(session, case)
    if until is not None:  # say so before the form, not after it was filled in
        return _barred(request, rt, locale, case, until)
    state = openness(rt, evaluations, stamp)
    if request.query.get("thanks") and evaluations:
        t = rt.catalogs.text
        link = (request.path + _query(request)) if state == "followup" else None
        return _notice(request, rt, locale, case, "thanks", t(locale, "page.thanks"),
                       [t(locale, "page.thanks_more")], summary=_summary(rt, locale, evaluations),
                       followup_link=link)
    if state == "closed":
        return _closed(request, rt, locale, case, evaluations)
    return _form(request, rt, locale, case, evaluations, stamp, bundle=bundle)


def _choice(rt: Runtime, form: Any) -> dict[str, Any]:
    reasons = [r for r in dict.fromkeys(str(v) for v in form.getall("reasons", [])) if r in rt.policy.reasons]
    text = str(form.get("text") or "").strip()[:TEXT_MAX] or None
    suggestion = str(form.get("suggestion") or "").strip()[:TEXT_MAX] or None
    scope: Scope = "bundle" if form.get("scope") == "bundle" else "item"  # only the form's two choices
    return {"grade": str(form.get("grade") or ""), "reasons": reasons, "text": text, "suggestion": suggestion,
            "scope": scope}


def _words(grade: Grade, chosen: dict[str, Any]) -> str | None:
    """What is stored as the rating's text: a bad grade's explanation, or a good grade's 意见和建议 (Shantou
    art. 23: the online form may add a box for opinions and suggestions). Without JavaScript both boxes are on
    the page; a good grade keeps the words of the explanation box when the suggestion box is empty."""
    if grade.is_bad:
        return chosen["text"]
    return chosen["suggestion"] or chosen["text"]


def _problem(rt: Runtime, locale: str, chosen: dict[str, Any]) -> tuple[str, str] | None:
    """What is wrong with the form, and the question it is about (elder mode shows that one first)."""
    t = rt.catalogs.text
    grade = Grade(chosen["grade"]) if chosen["grade"] in Grade._value2member_map_ else None
    if grade is None:
        return t(locale, "page.need_grade"), "grade"
    if grade.is_bad and not chosen["reasons"] and not chosen["text"]:
        return t(locale, "page.need_reason"), "reasons"
    if grade.is_bad and "other" in chosen["reasons"] and not chosen["text"]:  # 其他 opens text (Shantou art. 23)
        return t(locale, "page.need_text"), "text"
    if text_problem(chosen["text"]):
        return t(locale, "page.control_characters").format(field=t(locale, "page.text")), "text"
    if text_problem(chosen["suggestion"]):
        return t(locale, "page.control_characters").format(field=t(locale, "page.suggestion")), "grade"
    return None


async def submit(request: web.Request) -> web.StreamResponse:
    rt, locale, case = await _open(request)
    if case is None:
        return _invalid(request, rt, locale)
    assert case.id is not None
    form = await request.post()
    chosen = _choice(rt, form)
    token = str(form.get("form_token") or "")
    token = token if FORM_TOKEN.fullmatch(token) else None
    stamp = now(request)
    error = _problem(rt, locale, chosen)
    if error is None:
        thanks = request.path + _query(request, thanks="1")
        once = keys.rating_form(case.id, token) if token else None
        guard: AbstractAsyncContextManager[None] = rt.state.lock(once) if once else nullcontext()
        async with guard:  # a copy sent at the same moment waits here, then finds the token used
            if once and await rt.state.get(once) is not None:
                raise web.HTTPSeeOther(thanks)  # this form was acted on already: answered as it was
            grade = Grade(chosen["grade"])
            try:
                async with rt.db.write() as session:
                    locked = await case_store.by_id(session, case.id, lock=rt.db.locks_rows)
                    assert locked is not None
                    # The form offers the bundle only for a bundle's item; a forged choice rates the item.
                    scope: Scope = chosen["scope"] if locked.bundle_no else "item"
                    await record(session, rt, locked, grade, tuple(chosen["reasons"]) if grade.is_bad else (),
                                 _words(grade, chosen), _channel(request), stamp, scope=scope,
                                 **_source(request, rt))
            except RaterBarred as exc:
                return _barred(request, rt, locale, case, exc.until)
            except RatingRefused:
                async with rt.db.read() as session:
                    evaluations = await evaluation_store.for_case(session, case.id)
                return _closed(request, rt, locale, case, evaluations, 409)
            if once:
                try:
                    await rt.state.put(once, "used", FORM_TOKEN_TTL)
                except StateUnavailable as exc:  # stored and answered; only a copy would not be recognised
                    log.warning("rating page: form token used but not remembered: %s", exc)
        raise web.HTTPSeeOther(thanks)
    async with rt.db.read() as session:
        evaluations = await evaluation_store.for_case(session, case.id)
        bundle = await _bundle(session, case)
    if openness(rt, evaluations, stamp) == "closed":
        return _closed(request, rt, locale, case, evaluations, 409)
    return _form(request, rt, locale, case, evaluations, stamp, error=error, chosen=chosen, status=422,
                 form_token=token, bundle=bundle)  # nothing stored: the corrected form may still be sent with it


def setup(app: web.Application) -> None:
    app.router.add_get("/r/{token}", show)
    app.router.add_post("/r/{token}", submit)
