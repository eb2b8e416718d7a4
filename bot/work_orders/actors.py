"""Who acts on a work order and what may refuse them: the actors (users, a business system, the service itself,
the rater), the roles each action needs, and the refusal every step raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.infra.limits import text_problem
from bot.infra.refusals import Invalid

# Who may take each action (besides the business systems' token and an admin).
ROLES: dict[str, frozenset[str]] = {
    "dispatch": frozenset({"l1"}),
    "rectify": frozenset({"l2"}),
    "review": frozenset({"l1"}),
    "callback": frozenset({"l1", "agent"}),
    "appeal": frozenset({"l2"}),
    "decide-appeal": frozenset({"l1"}),
    "request-extension": frozenset({"l2"}),
    "decide-extension": frozenset({"l1"}),
    "contact": frozenset({"l2"}),
}
ROLE_NAMES = ("l1", "l2", "agent", "admin")


@dataclass(frozen=True)
class Actor:
    """Who acts: a user, a business system ("api"), the service itself ("system") or the rater."""

    name: str
    role: str  # "api", "system", "citizen", or a user's role
    agencies: tuple[str, ...] | None = None  # jurisdiction; None = every agency

    def sees(self, agency_code: str) -> bool:
        return self.agencies is None or agency_code in self.agencies

    def may(self, action: str) -> bool:
        return self.role in ("api", "system", "admin") or self.role in ROLES.get(action, frozenset())


SYSTEM = Actor("system", "system")
API = Actor("api", "api")
CITIZEN_SMS = Actor("citizen:sms", "citizen")  # the rater, answering the callback by SMS


def choice_field(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    """A field of an action's body that names one of `allowed` (a callback's result, a decision, an answer); 422
    naming the field otherwise."""
    value = body.get(name)
    if value not in allowed:
        expected = f"expected one of {', '.join(allowed)}"
        raise Invalid(f"{name}: {expected}", errors=[{"field": name, "message": expected}])
    return str(value)


def text_field(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    """A text field of an action's body (a note, a reason): stripped, at most 2000 characters, no control
    character; 422 naming the field otherwise."""
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Invalid(f"{name} is required", errors=[{"field": name, "message": "required"}])
        return None
    if not isinstance(value, str) or len(value) > 2000:
        raise Invalid(f"{name}: expected a string of at most 2000 characters",
                      errors=[{"field": name, "message": "expected a string of at most 2000 characters"}])
    problem = text_problem(value)
    if problem:
        raise Invalid(f"{name}: {problem}", errors=[{"field": name, "message": problem}])
    return value.strip()
