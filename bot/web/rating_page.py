"""The rating page behind every reminder's link (GET/POST /r/{token}): a plain form, no JavaScript
needed, nothing loaded from outside the service. Every text comes from the catalogs."""

from __future__ import annotations

from html import escape

from aiohttp import web
from babel import Locale
from babel.dates import format_date

from bot.i18n import _BABEL, SOURCE, SUPPORTED, negotiate
from bot.ratings import RaterBarred, RatingRefused, openness, record
from bot.runtime import Runtime
from bot.web.common import now, runtime
from dialogs import messages as m
from dialogs.grades import Grade
from dialogs.types import Reply
from store import cases as case_store
from store import evaluations as evaluation_store
from store.models import Case

STYLE = """
body{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;background:#f4f6f8;color:#1a1a1a}
main{max-width:32rem;margin:0 auto;padding:1rem}
h1{font-size:1.3rem}.case{color:#333;margin-bottom:1rem}
fieldset{border:0;padding:0;margin:0 0 1rem}legend{font-weight:600;margin-bottom:.5rem}
label.choice{display:block;background:#fff;border:2px solid #c8d0d8;border-radius:.6rem;padding:.9rem 1rem;
margin:.4rem 0;font-size:1.1rem}
label.choice:focus-within{outline:3px solid #0b5fff}
textarea{width:100%;min-height:5rem;font-size:1rem;box-sizing:border-box}
button{width:100%;padding:1rem;font-size:1.1rem;background:#0b5fff;color:#fff;border:0;border-radius:.6rem}
.error{background:#fde8e8;color:#8a0000;padding:.7rem;border-radius:.4rem}
nav{font-size:.9rem;margin-top:1.5rem}nav a{margin-right:.8rem;color:#0b4fd6}
"""


def _locale(request: web.Request, case: Case | None) -> str:
    chosen = request.query.get("lang")
    if chosen in SUPPORTED:
        return chosen
    for part in request.headers.get("Accept-Language", "").split(","):
        tag = part.split(";")[0].strip()
        if tag.lower().startswith(("zh", "en")):
            return negotiate(tag)
    return case.locale if case else SOURCE


def _autonym(locale: str) -> str:
    """Each language in its own name (Babel's CLDR data), as a language switch shows them."""
    return Locale.parse(locale).get_display_name(locale) or locale


def _page(rt: Runtime, locale: str, body: str, status: int = 200, token: str | None = None) -> web.Response:
    t = rt.catalogs.text
    links = "".join(f'<a href="?lang={loc}" lang="{loc.replace("_", "-")}">{escape(_autonym(loc))}</a>'
                    for loc in SUPPORTED)
    html = (f'<!doctype html><html lang="{locale.replace("_", "-")}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{escape(t(locale, 'page.title'))}</title><style>{STYLE}</style></head>"
            f"<body><main><h1>{escape(t(locale, 'page.title'))}</h1>{body}"
            f"{'<nav>' + links + '</nav>' if token else ''}</main></body></html>")
    return web.Response(text=html, content_type="text/html", charset="utf-8", status=status,
                        headers={"Cache-Control": "no-store", "Content-Security-Policy": "default-src 'self'; "
                                 "style-src 'unsafe-inline'", "X-Frame-Options": "DENY"})


def _form(rt: Runtime, locale: str, case: Case, followup: bool, error: str | None = None,
          chosen: dict[str, object] | None = None) -> str:
    t = rt.catalogs.text
    chosen = chosen or {}
    completed = format_date(case.completed_at.astimezone(rt.policy.tz).date(), format="long", locale=_BABEL[locale])
    about = t(locale, "page.case").format(item=case.item_name, agency=case.agency_name, completed_at=completed)
    parts = [f'<p class="case">{escape(about)}</p>']
    if followup:
        parts.append(f"<p>{escape(t(locale, 'page.followup'))}</p>")
    if error:
        parts.append(f'<p class="error" role="alert">{escape(error)}</p>')
    parts.append('<form method="post"><fieldset><legend>' + escape(t(locale, "page.question")) + "</legend>")
    for grade in Grade:
        checked = " checked" if chosen.get("grade") == grade.value else ""
        parts.append(f'<label class="choice"><input type="radio" name="grade" value="{grade.value}"{checked}> '
                     f"{escape(t(locale, 'grade.' + grade.value))}</label>")
    parts.append("</fieldset><fieldset><legend>" + escape(t(locale, "page.reasons")) + "</legend>")
    picked = chosen.get("reasons") or []
    for code in rt.policy.reasons:
        checked = " checked" if code in picked else ""  # type: ignore[operator]
        label = rt.catalogs.reason_label(locale, code, rt.policy.reasons)
        parts.append(f'<label class="choice"><input type="checkbox" name="reasons" value="{escape(code)}"{checked}> '
                     f"{escape(label)}</label>")
    parts.append(f'</fieldset><label for="text">{escape(t(locale, "page.text"))}</label>'
                 f'<textarea id="text" name="text" maxlength="1000">{escape(str(chosen.get("text") or ""))}</textarea>'
                 f'<p><button type="submit">{escape(t(locale, "page.submit"))}</button></p></form>')
    return "".join(parts)


async def _open(request: web.Request) -> tuple[Runtime, str, str, Case | None]:
    """(runtime, token, locale, the case the token names, or None for a tampered or unknown token)."""
    rt = runtime(request)
    token = request.match_info["token"]
    case_id = rt.links.case_id(token)
    case = None
    if case_id is not None:
        async with rt.db.read() as session:
            case = await case_store.by_id(session, case_id)
    return rt, token, _locale(request, case), case


def _invalid(rt: Runtime, locale: str) -> web.Response:
    return _page(rt, locale, f"<p>{escape(rt.catalogs.text(locale, 'page.invalid'))}</p>", 404)


async def show(request: web.Request) -> web.Response:
    rt, token, locale, case = await _open(request)
    if case is None:
        return _invalid(rt, locale)
    async with rt.db.read() as session:
        state = openness(rt, await evaluation_store.for_case(session, case.id), now(request))  # type: ignore[arg-type]
    if state == "closed":
        return _page(rt, locale, f"<p>{escape(rt.catalogs.text(locale, 'page.closed'))}</p>", token=token)
    return _page(rt, locale, _form(rt, locale, case, state == "followup"), token=token)


async def submit(request: web.Request) -> web.Response:
    rt, token, locale, case = await _open(request)
    if case is None:
        return _invalid(rt, locale)
    form = await request.post()
    grade_value = str(form.get("grade") or "")
    reasons = [r for r in dict.fromkeys(str(v) for v in form.getall("reasons", [])) if r in rt.policy.reasons]
    text = str(form.get("text") or "").strip()[:1000] or None
    chosen = {"grade": grade_value, "reasons": reasons, "text": text}
    t = rt.catalogs.text
    error = None
    grade = Grade(grade_value) if grade_value in Grade._value2member_map_ else None
    if grade is None:
        error = t(locale, "page.need_grade")
    elif grade.is_bad and not reasons and not text:
        error = t(locale, "page.need_reason")
    elif grade.is_bad and reasons == ["other"] and not text:
        error = t(locale, "page.need_text")
    stamp = now(request)
    if error is None:
        assert grade is not None
        try:
            async with rt.db.write() as session:
                locked = await case_store.by_id(session, case.id, lock=rt.db.locks_rows)  # type: ignore[arg-type]
                assert locked is not None
                await record(session, rt, locked, grade, tuple(reasons) if grade.is_bad else (), text, "web", stamp)
        except RaterBarred as exc:
            barred = rt.render(Reply(m.BARRED, {"until": exc.until}), locale)
            return _page(rt, locale, f"<p>{escape(barred)}</p>", 403, token=token)
        except RatingRefused:
            return _page(rt, locale, f"<p>{escape(t(locale, 'page.closed'))}</p>", 409, token=token)
        return _page(rt, locale, f"<p>{escape(t(locale, 'page.thanks'))}</p>", token=token)
    async with rt.db.read() as session:
        state = openness(rt, await evaluation_store.for_case(session, case.id), stamp)  # type: ignore[arg-type]
    return _page(rt, locale, _form(rt, locale, case, state == "followup", error, chosen), 422, token=token)


def setup(app: web.Application) -> None:
    app.router.add_get("/r/{token}", show)
    app.router.add_post("/r/{token}", submit)
