"""Neutral types that cross the line between channels, the dialog core and the application.

A channel turns its provider's request into an `Inbound`; the core answers with `Reply` values
(message keys and parameters, never text: `bot/` renders them through the Babel catalogs in the
person's language) and effects (what must be stored); `bot/` commits the effects, then renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar

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


@dataclass(frozen=True, slots=True)
class RecordCallback:
    """The rater's answer to a callback question about a work order's rectification (CONTRACT "callback results")."""

    work_order_id: int
    result: str


Effect = RecordRating | AddText | OptOut | OptIn | RecordCallback


# --- the one protocol every dialog answers in ------------------------------------------------------


class DialogState(Protocol):
    """A dialog's state: a typed JSON envelope whose `dialog` field names the dialog that reads it back
    (dialogs/registry.py), so that whoever stores it need not know which dialog it belongs to."""

    DIALOG: ClassVar[str]

    def to_json(self) -> dict[str, Any]: ...


class ConversationState(DialogState, Protocol):
    """The state of a dialog held in a conversation (text, WeChat): what the inbound road asks of any of them.

    `locks_case`: its case is locked with the message (a rating may be written to it);
    `blocks_rating`: it still waits for the case's rating, so a rating given elsewhere ends it;
    `hands_over`: the next message may be meant for another case (the person's other cases are wanted).
    """

    case_id: int
    expires_at: datetime

    @property
    def locks_case(self) -> bool: ...

    @property
    def blocks_rating(self) -> bool: ...

    @property
    def hands_over(self) -> bool: ...


S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[S]):
    """Every dialog's answer to one step: the next state (None: the dialog is over), what to say, what to store.
    The application stores the effects before it sends the replies."""

    state: S | None
    replies: tuple[Reply, ...] = ()
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True, slots=True)
class Context:
    """What the application knows about the person when a message arrives."""

    case: CaseView | None  # the case of the open conversation, when there is one
    oldest_unrated: CaseView | None  # without an open conversation: the case to offer
    unrated: int = 0  # how many cases the person has left to rate
    known: bool = False  # whether we have any case for this person at all
    unrated_cases: tuple[CaseView, ...] = ()  # the oldest few, oldest first (for the list)
    barred_until: datetime | None = None  # a rater barred from rating (Hainan art. 19) until then
