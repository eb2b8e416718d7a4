"""GET /api/v1/audit?from=&to=&action=&before=&limit= (issue 18): the audit table, newest first.

For the business systems' token and admins (a user token or the console's session); anyone else gets
403. `from`/`to` as for /api/v1/stats (a date is the local day, `to` included; an instant needs an
offset); `action` an action's name (`user.create`) or a prefix ending in `*` (`user.*`); a page holds
`limit` rows (1–500, default 100) and `next` links the older ones (`before=<id>`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.infra import audit
from bot.web.common import error, json_response, runtime
from bot.web.stats import period, reader
from store import audit as store

READERS = ("api", "admin")
PAGE, MAX_PAGE = 100, 500


def _number(request: web.Request, name: str, errors: list[dict[str, str]], low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12) or not low <= int(raw) <= high:
        errors.append({"field": name, "message": f"expected a whole number from {low} to {high}"})
        return None
    return int(raw)


async def get_audit(request: web.Request) -> web.Response:
    who = await reader(request)
    if who.role not in READERS:
        return error(403, "the audit log is for admins and the business systems' token")
    rt = runtime(request)
    bounds, errors = period(request)
    action = request.query.get("action") or None
    if action is not None and (len(action) > 64 or not action.isascii() or not action.isprintable()):
        errors.append({"field": "action", "message": "expected an action (user.create) or a prefix (user.*)"})
    before = _number(request, "before", errors, 1, 10**12)
    limit = _number(request, "limit", errors, 1, MAX_PAGE) or PAGE
    if errors:
        return json_response({"errors": errors}, 422)
    filters = store.Filters(bounds.get("from"), bounds.get("to"), action, before)
    async with rt.db.read() as session:
        rows = await store.listing(session, filters, limit + 1)
    answer: dict[str, Any] = {"events": [audit.event_json(e, rt.policy.tz) for e in rows[:limit]]}
    if len(rows) > limit:
        query = {k: v for k, v in request.query.items() if k != "before"}
        answer["next"] = f"{request.path}?{urlencode({**query, 'before': str(rows[limit - 1].id)})}"
    return json_response(answer)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/audit", get_audit)
