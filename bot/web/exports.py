"""GET /api/v1/exports/{evaluations|work-orders}.{csv|xlsx} (issue 8): a period's rows as a file, streamed.

Query: `from`, `to` (as /api/v1/stats: a date is the local day, `to` included; an instant needs an
offset), `agency_code` and `district_code` (each repeatable), `pii=masked|full`. Evaluations are
chosen by when they were given, work orders by when they were opened.

Who reads the statistics reads the exports, inside their jurisdiction: asking for an agency outside it
is 403, not an empty file, so that a wrong code is not mistaken for a quiet agency. Personal data is
masked, the words people typed included; `pii=full` is for admins and 12345 agents only (they call
raters back), never for the business systems' token (the contract: no response holds a whole number).
An agent's is whole only where the console would reveal the number (the callback step, recorded in each
work order's history); an admin's is whole throughout. Each such export is an audit row, written
before the response ends: an export that cannot be audited is cut, never complete.

The response is chunked and written batch by batch as the rows are read; a failure once it has begun
cannot change the status any more, so the connection is cut instead of ending the body, and the
client sees an incomplete download rather than a file that looks whole.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import web

from bot.figures.exports import stream
from bot.web.common import error, json_response, runtime
from bot.web.stats import period, reader
from store import exports as store

PII = ("masked", "full")
MAX_CODE = 100  # the columns' length
ROUTE = "/api/v1/exports/{kind:evaluations|work-orders}.{format:csv|xlsx}"

log = logging.getLogger("haochaping.exports")


def _codes(request: web.Request, name: str, errors: list[dict[str, str]]) -> tuple[str, ...] | None:
    values = request.query.getall(name, [])
    for value in values:
        if not value.strip() or len(value) > MAX_CODE:
            errors.append({"field": name, "message": f"expected a code of 1 to {MAX_CODE} characters"})
            return None
    return stream.codes(values) or None


async def export(request: web.Request) -> web.StreamResponse:
    who = await reader(request)
    rt = runtime(request)
    kind, fmt = request.match_info["kind"], request.match_info["format"]
    bounds, errors = period(request)
    agencies = _codes(request, "agency_code", errors)
    districts = _codes(request, "district_code", errors)
    pii = request.query.get("pii", "masked")
    if pii not in PII:
        errors.append({"field": "pii", "message": "expected masked or full"})
    if errors:
        return json_response({"errors": errors}, 422)
    full = pii == "full"
    if full and who.role not in stream.FULL_ROLES:
        return error(403, "pii=full is for admins and 12345 agents only; the business systems' token and "
                          f"other roles get personal data masked (this caller's role: {who.role})")
    outside = [a for a in agencies or () if not who.sees(a)]
    if outside:
        return error(403, f"not in your jurisdiction: agency_code {', '.join(outside)}")
    filters = store.Filters(bounds.get("from"), bounds.get("to"), agencies or who.agencies, districts, full)
    tz = rt.policy.tz
    first = filters.start.astimezone(tz).date().isoformat() if filters.start else None
    last = (filters.end - timedelta(microseconds=1)).astimezone(tz).date().isoformat() if filters.end else None
    out = stream.writer(kind, fmt, created=rt.clock().astimezone(tz))
    response = web.StreamResponse(headers={
        "Content-Disposition": f'attachment; filename="{stream.filename(kind, fmt, first, last)}"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
    response.content_type = out.content_type
    if fmt == "csv":
        response.charset = "utf-8"
    response.enable_chunked_encoding()
    await response.prepare(request)
    progress = stream.Progress()
    complete = audited = False
    scope = stream.SCOPES.get(who.role, stream.ALL)

    async def audit(ended: bool) -> None:
        await stream.audit_unmasked(rt.db, tz, who.name, who.role, kind, fmt, filters, scope, progress, ended,
                                    rt.clock(), request.remote)

    try:
        shape = stream.formatting(rt, full, identity=who.role not in stream.ANONYMOUS_ROLES, scope=scope)
        async for chunk in stream.chunks(rt.db, kind, out, filters, shape, progress,
                                         revealed_by=who.name if full else None, now=rt.clock()):
            if chunk:
                await response.write(chunk)
        if full:  # before the end: a client holds a complete file only once it is on record
            await audit(True)
            audited = True
        await response.write_eof()
        complete = True
    except ConnectionResetError:
        log.info("export %s.%s: the client went away after %d rows", kind, fmt, progress.rows)
    except Exception:
        log.exception("export %s.%s failed after %d rows; the connection is cut", kind, fmt, progress.rows)
        if request.transport is not None:
            request.transport.abort()
    finally:
        if full:
            if not audited:
                try:
                    await audit(False)
                except Exception:
                    log.exception("export %s.%s: the audit row of an interrupted unmasked export failed", kind, fmt)
            stream.log_unmasked(who.name, who.role, kind, fmt, filters, progress.rows, complete)
    return response


def setup(app: web.Application) -> None:
    app.router.add_get(ROUTE, export)
