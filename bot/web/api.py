"""The HTTP API for business systems (CONTRACT "HTTP API"): cases in, cases out, ratings."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.infra.refusals import Refusal
from bot.rating import intake
from bot.rating.intake import FieldError
from bot.rating.ratings import chosen, rating_errors, record, record_visit, scope_error, scope_of
from bot.web import idempotency, ndjson, refusals, views
from bot.web.common import BODY_LIMIT, BULK_LIMIT, error, json_response, now, read_json, require_token, runtime
from store import cases as case_store

BULK_BATCH = 500
MAX_ERRORS = 10_000
LINE_LIMIT = BODY_LIMIT  # one case is small; a line as large as a whole request is not a case


def _unprocessable(errors: list[FieldError]) -> web.Response:
    return json_response({"errors": [e.as_json() for e in errors]}, status=422)


async def post_case(request: web.Request) -> web.Response:
    require_token(request)
    rt = runtime(request)
    parsed = intake.parse_case(await read_json(request))
    if isinstance(parsed, list):
        rt.metrics.cases.labels("invalid").inc()
        return _unprocessable(parsed)
    case, created = await intake.ingest(rt, parsed, now(request))
    rt.metrics.cases.labels("created" if created else "existing").inc()
    async with rt.db.read() as session:
        doc = await views.case_json(session, rt, case, now(request))
    return json_response(doc, status=201 if created else 200)


async def post_cases_bulk(request: web.Request) -> web.Response:
    """NDJSON streamed line by line: memory holds one batch, whatever the body's size."""
    require_token(request)
    rt = runtime(request)
    created = existing = 0
    errors: list[dict[str, Any]] = []
    omitted = 0
    batch: list[intake.CaseIn] = []
    stamp = now(request)

    def bad(line_no: int, errs: list[dict[str, str]]) -> None:
        nonlocal omitted
        if len(errors) < MAX_ERRORS:
            errors.append({"line": line_no, "errors": errs})
        else:
            omitted += 1

    async def flush() -> None:
        nonlocal created, existing
        if batch:
            c, e = await intake.ingest_batch(rt, batch, stamp)
            created, existing = created + c, existing + e
            batch.clear()

    try:
        async for line_no, raw in ndjson.lines(request.content, BULK_LIMIT, LINE_LIMIT, rt.settings.body_timeout):
            if raw is None:
                bad(line_no, [{"field": "body", "message": f"the line is longer than {LINE_LIMIT} bytes"}])
                continue
            if not raw.strip():
                continue
            parsed = intake.parse_case_json(raw)
            if isinstance(parsed, list):
                bad(line_no, [e.as_json() for e in parsed])
            else:
                batch.append(parsed)
                if len(batch) >= BULK_BATCH:
                    await flush()
    except ndjson.BodyTooLarge:
        return json_response({"error": f"the body is larger than {BULK_LIMIT} bytes", "created": created,
                              "existing": existing}, status=413)
    except ndjson.BodyStalled:
        await flush()  # the lines that did arrive are kept, as after any bad line
        response = json_response({"error": f"no byte of the body arrived for {rt.settings.body_timeout:g} s",
                                  "created": created, "existing": existing}, status=408)
        response.force_close()
        return response
    await flush()
    rt.metrics.cases.labels("created").inc(created)
    rt.metrics.cases.labels("existing").inc(existing)
    rt.metrics.cases.labels("invalid").inc(len(errors) + omitted)
    answer: dict[str, Any] = {"created": created, "existing": existing, "errors": errors}
    if omitted:
        answer["errors_omitted"] = omitted  # beyond MAX_ERRORS: memory stays bounded whatever the body
    return json_response(answer)


async def get_case(request: web.Request) -> web.Response:
    require_token(request)
    rt = runtime(request)
    async with rt.db.read() as session:
        case = await case_store.by_no(session, request.match_info["case_no"])
        if case is None:
            return error(404, "no such case")
        return json_response(await views.case_json(session, rt, case, now(request)))


async def post_evaluation(request: web.Request) -> web.Response:
    require_token(request)
    scope = idempotency.scope_of("api", request.headers.get("Authorization", "").partition(" ")[2].strip())
    return await idempotency.idempotent(request, scope, lambda: _evaluate(request))


async def _evaluate(request: web.Request) -> web.Response:
    rt = runtime(request)
    doc = await read_json(request)
    errs = rating_errors(doc, set(rt.policy.reasons))
    if errs:
        return _unprocessable(errs)
    grade, reasons, text = chosen(doc)
    stamp = now(request)
    try:
        async with rt.db.write() as session:
            case = await case_store.by_no(session, doc["case_no"], lock=rt.db.locks_rows)
            if case is None:
                return error(404, "no such case")
            scope = scope_of(doc)
            wrong_scope = scope_error(case, scope, doc)
            if wrong_scope is not None:
                return _unprocessable([wrong_scope])
            terminal_id = (doc.get("terminal_id") or "").strip() or None
            if scope == "visit":
                staff_id = (doc.get("staff_id") or "").strip()
                evaluation = await record_visit(
                    session, rt, case, grade, reasons if grade.is_bad else (), text, doc["channel"], stamp,
                    visit_id=doc["visit_id"].strip(), staff_id=staff_id or str(case.staff_id),
                    staff_name=(doc.get("staff_name") or "").strip() or (None if staff_id else case.staff_name),
                    terminal_id=terminal_id)
            else:
                evaluation = await record(session, rt, case, grade, reasons if grade.is_bad else (), text,
                                          doc["channel"], stamp, scope=scope, terminal_id=terminal_id)
            body = views.evaluation_json(rt, evaluation)
    except Refusal as exc:
        return refusals.response(exc)
    return json_response(body, status=201)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/cases", post_case)
    app.router.add_post("/api/v1/cases:bulk", post_cases_bulk)
    app.router.add_get("/api/v1/cases/{case_no}", get_case)
    app.router.add_post("/api/v1/evaluations", post_evaluation)


