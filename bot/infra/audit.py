"""The audit trail (issue 18): every act on personal data, or on who may see it, is a row of
`audit_events`, written in the transaction of the change it records and never changed afterwards.

| action | when | target |
| --- | --- | --- |
| `number.reveal` | an agent (L1, an admin) shows a rater's whole number at the console's callback step | work_order |
| `export.unmasked` | a `pii=full` export or `haochaping export --unmasked`, when it ends (rows, whole rows) | export |
| `user.create`, `user.disable`, `user.password`, `user.update` | `haochaping users add/disable/password/set` | user |
| `snapshot.publish` | a period's statistics frozen (API, CLI, or the tick's schedule) | snapshot |
| `appeal.decide` | an appeal upheld or rejected (API or console) | work_order |
| `signal.decide` | a supervision signal dismissed or confirmed (API or console) | signal |
| `supervision.draw` | a period's random supervisory draw for an agency (the tick) | supervision_draw |
| `supervision.answer` | a supervisory call's answer recorded | supervision_call |

The actor is a user's name, `api` (the business systems' token), `system` (the service itself) or
`cli:<operator>`; the address is the client's, for a request. Details pass the one mask
(bot/infra/privacy.py) before they are stored: an audit row names what happened, never a whole number.
"""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.infra.privacy import mask_json
from store import audit as store
from store.models import AuditEvent

REVEAL = "number.reveal"
DIAL = "number.dial"  # a rater's whole number handed to the centre's dialer for a callback call (due-calls)
EXPORT = "export.unmasked"
USER_CREATE = "user.create"
USER_DISABLE = "user.disable"
USER_PASSWORD = "user.password"
USER_UPDATE = "user.update"
SNAPSHOT = "snapshot.publish"
APPEAL = "appeal.decide"
CALENDAR = "calendar.import"  # a year of the official calendar imported or replaced (bot/cli/calendar.py)
SIGNAL = "signal.decide"  # bot/supervision/decisions.py
DRAW = "supervision.draw"  # bot/supervision/draws.py
SUPERVISORY_ANSWER = "supervision.answer"
ACTIONS = (REVEAL, DIAL, EXPORT, USER_CREATE, USER_DISABLE, USER_PASSWORD, USER_UPDATE, SNAPSHOT, APPEAL, CALENDAR,
           SIGNAL, DRAW, SUPERVISORY_ANSWER)


async def record(session: AsyncSession, at: datetime, actor: str, action: str, *,
                 target: tuple[str, object] | None = None, details: dict[str, Any] | None = None,
                 address: str | None = None) -> AuditEvent:
    """Add the row to the session of the change: it commits with the change, or not at all."""
    return await store.add(session, at, actor, action, target[0] if target else None,
                           str(target[1]) if target else None, mask_json(details) if details is not None else None,
                           address)


def cli_actor() -> str:
    """Whoever runs the command line: `cli:<login name>` (`cli` where the system names none)."""
    try:
        return "cli:" + getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment (a container without one)
        return "cli"


def event_json(e: AuditEvent, tz: Any) -> dict[str, Any]:
    return {"id": e.id, "at": e.at.astimezone(tz).isoformat(), "actor": e.actor, "action": e.action,
            "target": {"kind": e.target_kind, "id": e.target_id} if e.target_kind else None,
            "details": e.details, "address": e.address}
