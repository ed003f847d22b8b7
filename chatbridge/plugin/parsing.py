"""Helpers every channel's inbound mapper uses so that one bad item never loses a batch."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from pydantic_core import from_json

from chatbridge.errors import PayloadError
from chatbridge.models import Direction, Event, Identity, MessageReceived, UnknownEvent
from chatbridge.webhook import digest_id, invalid_reason

#: What mapping a malformed item raises: wrong or missing fields, wrong types, values
#: out of range. Mappers index provider objects directly and let these surface here.
_MALFORMED = (
    ValidationError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    OverflowError,
    OSError,
)


def load_json(body: bytes | str, what: str = "webhook body") -> Any:
    """``body`` parsed as JSON, or a :class:`~chatbridge.errors.PayloadError`.

    pydantic-core's parser (the one ``validate_json`` uses) caps nesting at 200 levels
    and refuses lone surrogates, so a hostile body can neither exhaust the stack later
    (RecursionError) nor hold text that cannot be written back as UTF-8.
    """
    try:
        return from_json(body)
    except ValueError as exc:
        raise PayloadError(f"{what} is not JSON: {exc}") from exc


class Inbound:
    """A channel's event builders, with its name and the time of receipt given once:
    ``Channel.inbound()`` makes one per request for the channel's mappers."""

    __slots__ = ("channel", "received_at")

    def __init__(self, channel: str, received_at: datetime) -> None:
        self.channel = channel
        self.received_at = received_at

    def identity(self, address: str) -> Identity:
        """An identity on this channel."""
        return Identity(channel=self.channel, address=address)

    def item(
        self, kind: str, item: dict[str, Any], parse: Callable[[dict[str, Any]], Event]
    ) -> Event:
        """``parse(item)``, or an UnknownEvent explaining why ``item`` could not be parsed."""
        try:
            return parse(item)
        except _MALFORMED as exc:
            return self._malformed(kind, item, exc)

    def items(
        self, kind: str, item: dict[str, Any], parse: Callable[[dict[str, Any]], list[Event]]
    ) -> list[Event]:
        """``parse(item)`` for an item that yields several events, or one UnknownEvent
        explaining why ``item`` could not be parsed."""
        try:
            return parse(item)
        except _MALFORMED as exc:
            return [self._malformed(kind, item, exc)]

    def _malformed(self, kind: str, item: dict[str, Any], exc: Exception) -> UnknownEvent:
        return self.unknown(kind, f"malformed {kind}: {invalid_reason(exc)}", item)

    def message(
        self,
        event_id: str,
        contact: Identity | dict[str, Any] | str,
        timestamp: datetime,
        raw: dict[str, Any],
        *,
        contact_name: str | None = None,
        reply_token: str | None = None,
        **content: Any,
    ) -> MessageReceived:
        """The event for an inbound message on this channel; a plain ``contact`` is an
        address. ``content`` holds the Message fields (text, media, ``id``...), the rest
        describes the event. Nested values may be plain data: the event and its message
        are validated in one pass."""
        if isinstance(contact, str):
            contact = {"channel": self.channel, "address": contact}
        message = {
            "contact": contact,
            "direction": Direction.INBOUND,
            "timestamp": timestamp,
            "raw": raw,
            **content,
        }
        return MessageReceived.model_validate(
            {
                "channel": self.channel,
                "event_id": event_id,
                "contact": contact,
                "contact_name": contact_name,
                "reply_token": reply_token,
                "timestamp": timestamp,
                "message": message,
                "raw": raw,
            }
        )

    def unknown(
        self,
        name: str,
        reason: str,
        raw: dict[str, Any],
        *,
        event_id: str | None = None,
        contact: Identity | dict[str, Any] | None = None,
        timestamp: datetime | None = None,
    ) -> UnknownEvent:
        """An UnknownEvent on this channel carrying ``raw``, at ``timestamp`` (the time
        of receipt unless the provider gave one); without the provider's ``event_id``,
        its id is derived from the content, so a redelivery deduplicates."""
        if event_id is None:
            event_id = f"unknown:{name}:{digest_id(json.dumps(raw, sort_keys=True, default=str))}"
        return UnknownEvent.model_validate(
            {
                "channel": self.channel,
                "event_id": event_id,
                "contact": contact,
                "timestamp": self.received_at if timestamp is None else timestamp,
                "name": name,
                "reason": reason,
                "raw": raw,
            }
        )
