"""Neutral types that cross the line between channels, the dialog core and the application.

A channel turns its provider's request into an `Inbound`; the core answers with `Reply` values
(message keys and parameters, never text: `bot/` renders them through the Babel catalogs in the
person's language) and effects (what must be stored); `bot/` commits the effects, then renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dialogs.grades import Grade


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message from a person, whatever the channel."""

    channel: str  # "sms", "wechat", …: the contract's channel vocabulary
    address: str  # normalised sender address (E.164 phone, openid)
    text: str
    message_id: str | None
    received_at: datetime
    # "text"; "subscribe" (a new follower); "media" (a picture, a voice message not recognised, a
    # location: nothing to read); or a keyword the provider has acted on already: "stop", "start",
    # "help" (Twilio's Advanced Opt-Out).
    kind: str = "text"


@dataclass(frozen=True, slots=True)
class Reply:
    """Something to say: a catalog key and its parameters (datetimes and codes stay typed)."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CaseView:
    """What the dialog needs to know of a case to talk about it."""

    id: int
    case_no: str
    item_name: str
    agency_name: str
    completed_at: datetime
    link: str  # the signed rating-page link for this case


# --- effects: what the application must store before it answers --------------------------------


@dataclass(frozen=True, slots=True)
class RecordRating:
    case_id: int
    grade: Grade
    reasons: tuple[str, ...] = ()
    text: str | None = None


@dataclass(frozen=True, slots=True)
class AddText:
    """The sentence a person adds after a bad rating was already stored."""

    case_id: int
    text: str


@dataclass(frozen=True, slots=True)
class OptOut:
    """The person asked for no more reminders on this channel."""


@dataclass(frozen=True, slots=True)
class OptIn:
    """The person asked for reminders again (Twilio's START): later cases are reminded."""


Effect = RecordRating | AddText | OptOut | OptIn
