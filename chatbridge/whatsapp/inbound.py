"""WhatsApp webhook notifications -> chatbridge events.

The envelope (object / entry / changes) must be well formed or the whole request is a
:class:`~chatbridge.errors.PayloadError`. Inside it, one malformed or unknown item
becomes an :class:`~chatbridge.models.UnknownEvent` with the item in ``raw``, so the rest
of the batch is still delivered and nothing is dropped.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from chatbridge.clock import from_unix
from chatbridge.errors import PayloadError
from chatbridge.models import (
    ChannelEvent,
    DeliveryState,
    Event,
    Identity,
    InteractiveReply,
    Location,
    Media,
    MediaKind,
    MessageKind,
    ProviderErrorInfo,
    Reaction,
    StatusUpdate,
    UnknownEvent,
)
from chatbridge.parsing import message_received, parse_item, unknown_event
from chatbridge.webhook import digest_id, invalid_reason
from chatbridge.whatsapp.payloads import (
    WAError,
    WAMedia,
    WAMessage,
    WANotification,
    WAStatus,
    WAValue,
)

CHANNEL = "whatsapp"
_MEDIA_TYPES = {
    "image": MediaKind.IMAGE,
    "audio": MediaKind.AUDIO,
    "video": MediaKind.VIDEO,
    "document": MediaKind.DOCUMENT,
    "sticker": MediaKind.STICKER,
}
_STATES = {state.value: state for state in DeliveryState}


def parse_notification(body: bytes, received_at: datetime) -> list[Event]:
    """All events of one webhook POST body, in payload order.

    ``received_at`` stamps events the provider gives no time (unknown items, errors).
    """
    try:
        document = json.loads(body)
        notification = WANotification.model_validate(document)
    except (ValueError, ValidationError) as exc:
        raise PayloadError(f"not a WhatsApp webhook notification: {invalid_reason(exc)}") from exc
    if notification.object != "whatsapp_business_account":
        raise PayloadError(f"unexpected notification object {notification.object!r}")
    events: list[Event] = []
    for entry in notification.entry:
        for change in entry.changes:
            if change.field != "messages":
                raw = change.model_dump()
                events.append(_unknown(change.field, "field is not mapped", raw, received_at))
                continue
            events.extend(_parse_value(change.value, received_at))
    return events


def _parse_value(document: dict[str, Any], received_at: datetime) -> list[Event]:
    try:
        value = WAValue.model_validate(document)
    except ValidationError as exc:
        reason = f"malformed value: {invalid_reason(exc)}"
        return [_unknown("messages", reason, document, received_at)]
    names = {c.wa_id: c.profile.name for c in value.contacts if c.profile}

    def message(item: dict[str, Any]) -> Event:
        return _message(WAMessage.model_validate(item), names)

    def status(item: dict[str, Any]) -> Event:
        return _status(WAStatus.model_validate(item), received_at)

    events = [parse_item(CHANNEL, "message", i, message, received_at) for i in value.messages]
    events += [parse_item(CHANNEL, "status", i, status, received_at) for i in value.statuses]
    events += [
        ChannelEvent(
            channel=CHANNEL,
            event_id="error:" + digest_id(json.dumps(error.model_dump(), sort_keys=True)),
            timestamp=received_at,
            name="error",
            data=error.model_dump(),
            raw=document,
        )
        for error in value.errors
    ]
    return events


def _message(wa: WAMessage, names: dict[str, str | None]) -> Event:
    return message_received(
        CHANNEL,
        wa.id,
        Identity(channel=CHANNEL, address=wa.from_),
        from_unix(wa.timestamp),
        wa.model_dump(by_alias=True, exclude_none=True),
        contact_name=names.get(wa.from_),
        id=wa.id,
        reply_to=wa.context.id if wa.context else None,
        **_content(wa),
    )


def _content(wa: WAMessage) -> dict[str, Any]:
    """The common-model fields for the message's type."""
    media = getattr(wa, wa.type, None) if wa.type in _MEDIA_TYPES else None
    if isinstance(media, WAMedia):
        return {"media": [_media(wa.type, media)]}
    match wa.type:
        case "text" if wa.text:
            return {"text": wa.text.body}
        case "location" if wa.location:
            loc = wa.location
            return {"location": Location(**loc.model_dump(include=set(Location.model_fields)))}
        case "contacts" if wa.contacts is not None:
            return {"kind": MessageKind.CONTACTS}
        case "interactive" if wa.interactive:
            return _interactive_reply(wa)
        case "button" if wa.button:
            reply = InteractiveReply(id=wa.button.payload or wa.button.text, title=wa.button.text)
            return {"interactive_reply": reply}
        case "reaction" if wa.reaction:
            reaction = Reaction(message_id=wa.reaction.message_id, emoji=wa.reaction.emoji or "")
            return {"reaction": reaction}
        case "order" if wa.order:
            return {"kind": MessageKind.ORDER, "text": wa.order.text}
        case "system" if wa.system:
            return {"kind": MessageKind.SYSTEM, "text": wa.system.body}
    return {"kind": MessageKind.UNSUPPORTED}


def _media(kind: str, media: WAMedia) -> Media:
    return Media(
        kind=MediaKind.VOICE if kind == "audio" and media.voice else _MEDIA_TYPES[kind],
        provider_id=media.id,
        mime_type=media.mime_type,
        sha256=media.sha256,
        caption=media.caption,
        filename=media.filename,
    )


def _interactive_reply(wa: WAMessage) -> dict[str, Any]:
    assert wa.interactive is not None
    item = wa.interactive.button_reply or wa.interactive.list_reply
    if item:
        reply = InteractiveReply(id=item.id, title=item.title, description=item.description)
        return {"interactive_reply": reply}
    if wa.interactive.nfm_reply is not None:
        name = str(wa.interactive.nfm_reply.get("name", "flow"))
        return {"interactive_reply": InteractiveReply(id=name, title=name)}
    return {"kind": MessageKind.UNSUPPORTED}


def _status(wa: WAStatus, received_at: datetime) -> Event:
    state = _STATES.get(wa.status)
    raw = wa.model_dump(exclude_none=True)
    if state is None:
        return _unknown(f"status:{wa.status}", "status value is not mapped", raw, received_at)
    return StatusUpdate(
        channel=CHANNEL,
        event_id=f"{wa.id}:{wa.status}",
        contact=Identity(channel=CHANNEL, address=wa.recipient_id),
        timestamp=from_unix(wa.timestamp),
        message_id=wa.id,
        state=state,
        errors=[_error_info(error) for error in wa.errors],
        raw=raw,
    )


def _error_info(error: WAError) -> ProviderErrorInfo:
    details = (error.error_data or {}).get("details")
    return ProviderErrorInfo(
        code=str(error.code),
        message=error.message or error.title or "",
        details=str(details) if details is not None else None,
    )


def _unknown(name: str, reason: str, raw: dict[str, Any], now: datetime) -> UnknownEvent:
    return unknown_event(CHANNEL, name, reason, raw, now)
