"""What a history hands out: customers, conversations, timeline entries, notes."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from chatbridge.models import (
    DeliveryState,
    Direction,
    Event,
    Identity,
    Message,
    ProviderErrorInfo,
)
from chatbridge.recorder import SendOutcome


class Customer(BaseModel):
    """One person, whatever channels they wrote on: the identities linked to them, and
    what the support team keeps about them. A customer merged into another one shows
    that one's view (tags and fields of both, the survivor's winning)."""

    id: str
    name: str | None = None
    language: str | None = None
    identities: list[Identity] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    fields: dict[str, Any] = Field(default_factory=dict)


class ConversationState(StrEnum):
    """OPEN: the customer waits for the team; PENDING: the team waits for the customer;
    RESOLVED: done, until the customer writes again."""

    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"


class Conversation(BaseModel):
    """One support case of a customer, on whichever channels it goes. ``channel`` is the
    channel of its latest message; ``first_response_at`` the team's first sent reply
    after the customer opened it."""

    id: str
    customer_id: str
    state: ConversationState
    channel: str | None = None
    opened_at: AwareDatetime
    updated_at: AwareDatetime
    resolved_at: AwareDatetime | None = None
    first_response_at: AwareDatetime | None = None
    opened_by_customer: bool = True
    assignee: str | None = None
    priority: int = 0
    tags: list[str] = Field(default_factory=list)


class Note(BaseModel):
    """An internal note of the team: not a :class:`~chatbridge.models.Message`, so no
    channel can send it."""

    model_config = ConfigDict(frozen=True)

    text: str
    author: str | None = None


class EntryKind(StrEnum):
    MESSAGE = "message"
    EVENT = "event"
    NOTE = "note"


class Delivery(BaseModel):
    """How far a sent message got: when each state was first reported, whatever order
    the reports came in. ``state`` is the furthest one; FAILED only when it got no
    further than sent."""

    state: DeliveryState
    sent_at: AwareDatetime | None = None
    delivered_at: AwareDatetime | None = None
    read_at: AwareDatetime | None = None
    played_at: AwareDatetime | None = None
    failed_at: AwareDatetime | None = None
    errors: list[ProviderErrorInfo] = Field(default_factory=list)


class Entry(BaseModel):
    """One item of a customer's timeline: a message in or out, an event (follow,
    opt-out, menu click...), or a note. Outbound messages carry the send's ``outcome``
    (with ``reason``: the refusal or the error), the provider's ``message_id`` and the
    ``delivery`` reported since."""

    id: int
    kind: EntryKind
    at: AwareDatetime
    customer_id: str
    conversation_id: str | None = None
    identity: Identity | None = None
    direction: Direction | None = None
    text: str | None = None
    message: Message | None = None
    event: Event | None = None
    note: Note | None = None
    outcome: SendOutcome | None = None
    reason: str | None = None
    message_id: str | None = None
    delivery: Delivery | None = None

    @property
    def channel(self) -> str | None:
        return self.identity.channel if self.identity else None


class Page(BaseModel):
    """Some entries, oldest first, and the cursor of the page before them (None: this
    is the first page)."""

    entries: list[Entry]
    before: str | None = None


class LinkSuggestion(BaseModel):
    """Two identities that may be one person, and why (``link`` joins them)."""

    identity: Identity
    other: Identity
    reason: str
