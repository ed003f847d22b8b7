"""What a channel tells a history: the events it took in and the sends it made; and
what a channel with tags of its own offers it (:class:`TagMirror`).

The core defines only this seam; :mod:`chatbridge.conversations` implements it (a
channel built with ``history=...``). Both calls are idempotent: an event is recorded
once per ``event_id``, a send once per key, its later outcome updating the same record.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from chatbridge.errors import describe
from chatbridge.models import Contact, Event, Message, Receipt
from chatbridge.policy import Decision

logger = logging.getLogger("chatbridge.recorder")


class SendOutcome(StrEnum):
    """How far a send got: PENDING is written before the request leaves (so a crash
    leaves a visible record), then one of the others."""

    PENDING = "pending"
    SENT = "sent"
    REFUSED = "refused"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class SendRecord:
    """One send of ``messages`` (one provider request) under ``key``: the caller's
    idempotency key, or one made for the call. ``error`` describes a failed or unknown
    outcome; ``decision`` a refusal. ``automated``: sent by automation (an automatic
    reply, a fallback step), not by the team: it is not their response."""

    key: str
    messages: Sequence[Message]
    contact: Contact | None
    outcome: SendOutcome
    at: datetime
    receipt: Receipt | None = None
    decision: Decision | None = None
    error: str | None = None
    automated: bool = False


class Recorder(Protocol):
    """Where a channel records what it received and sent."""

    async def open(self) -> None:
        """Connect now rather than at the first call (a server does at startup, so that
        its first events wait for no connection)."""

    async def record_events(self, events: Sequence[Event]) -> None:
        """Record ``events`` (new or already recorded: each is kept once)."""

    async def record_send(self, send: SendRecord) -> None:
        """Record a send, or the outcome of one recorded before under ``send.key``."""


class SendLog:
    """One send as the channel records it in ``history`` (nothing without one): its
    pending state before the request leaves, then its outcome. A pending record that
    cannot be written stops the send (nothing has left); an outcome that cannot be
    written is logged, and the record stays pending, so the message is never lost."""

    def __init__(
        self,
        history: Recorder | None,
        messages: Sequence[Message],
        contact: Contact | None,
        key: str | None,
        now: Callable[[], datetime],
        *,
        automated: bool = False,
    ) -> None:
        self.history = history
        self.messages = messages
        self.contact = contact
        self.key = key or (uuid.uuid4().hex if history is not None else "")
        self.now = now
        self.automated = automated
        self.started = False

    async def pending(self) -> None:
        if self.history is not None:
            await self.history.record_send(self._record(SendOutcome.PENDING))
            self.started = True

    async def outcome(
        self,
        outcome: SendOutcome,
        *,
        receipt: Receipt | None = None,
        decision: Decision | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Record how the send ended: a refusal always, anything else only once it was
        recorded pending (a send that never reached that point did not happen)."""
        if self.history is None or not (self.started or outcome is SendOutcome.REFUSED):
            return
        text = describe(error) if error is not None else None
        try:
            await self.history.record_send(self._record(outcome, receipt, decision, text))
        except Exception:
            logger.exception("the %s outcome of send %s could not be recorded", outcome, self.key)

    def _record(
        self,
        outcome: SendOutcome,
        receipt: Receipt | None = None,
        decision: Decision | None = None,
        error: str | None = None,
    ) -> SendRecord:
        return SendRecord(
            self.key,
            self.messages,
            self.contact,
            outcome,
            self.now(),
            receipt,
            decision,
            error,
            self.automated,
        )


class TagMirror(Protocol):
    """Mirrors the history tags ``tags`` onto the identities of channel ``channel``."""

    @property
    def channel(self) -> str: ...

    @property
    def tags(self) -> frozenset[str]: ...

    async def mirror(self, address: str, tags: frozenset[str]) -> None:
        """Make the mirrored tags ``address`` has at the provider exactly ``tags`` (a
        subset of :attr:`tags`): put on the missing ones, take off the others."""
        ...
