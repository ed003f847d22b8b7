"""LINE webhook events -> chatbridge events.

Every event has a ``webhookEventId`` (the dedup key; redeliveries keep it and set
``deliveryContext.isRedelivery``). Events that can be answered carry a ``replyToken``,
kept on the event so the channel can reply for free.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from chatbridge.clock import from_unix
from chatbridge.errors import PayloadError
from chatbridge.line.payloads import LineEvent, LineMessage, LineWebhook
from chatbridge.models import (
    ChannelEvent,
    Event,
    Followed,
    Identity,
    InteractiveReply,
    Location,
    Media,
    MediaKind,
    MessageKind,
    MessageReceived,
    Unfollowed,
)
from chatbridge.parsing import message_received, parse_item, unknown_event
from chatbridge.webhook import invalid_reason

CHANNEL = "line"
_MEDIA = {
    "image": MediaKind.IMAGE,
    "video": MediaKind.VIDEO,
    "audio": MediaKind.AUDIO,
    "file": MediaKind.FILE,
}
_CHANNEL_EVENTS = {"join", "leave", "beacon"}


def parse_webhook(body: bytes, received_at: datetime) -> list[Event]:
    """All events of one webhook body; an empty list for LINE's URL verification POST."""
    try:
        webhook = LineWebhook.model_validate(json.loads(body))
    except (ValueError, ValidationError) as exc:
        raise PayloadError(f"not a LINE webhook body: {invalid_reason(exc)}") from exc
    return [parse_item(CHANNEL, "event", item, _event, received_at) for item in webhook.events]


def _event(item: dict[str, Any]) -> Event:
    line = LineEvent.model_validate(item)
    address = line.source.address if line.source else None
    common: dict[str, Any] = {
        "channel": CHANNEL,
        "event_id": line.webhook_event_id,
        "contact": Identity(channel=CHANNEL, address=address) if address else None,
        "timestamp": from_unix(line.timestamp / 1000),
        # A standby channel must not answer: its reply token is not ours to use.
        "reply_token": line.reply_token if line.mode != "standby" else None,
        "raw": item,
    }
    match line.type:
        case "message" if line.message and common["contact"]:
            return _message(line.message, common)
        case "postback" if line.postback and common["contact"]:
            reply = InteractiveReply(id=line.postback.data)
            return message_received(interactive_reply=reply, **common)
        case "follow":
            return Followed(**common)
        case "unfollow":
            return Unfollowed(**common)
        case name if name in _CHANNEL_EVENTS:
            return ChannelEvent(name=name, data=line.beacon or {}, **common)
    return unknown_event(
        CHANNEL, line.type, "event type is not mapped", item, common["timestamp"]
    ).model_copy(update={"event_id": line.webhook_event_id, "contact": common["contact"]})


def _message(line: LineMessage, common: dict[str, Any]) -> MessageReceived:
    return message_received(id=line.id, reply_to=line.quoted_message_id, **common, **_content(line))


def _content(line: LineMessage) -> dict[str, Any]:
    if line.type == "text":
        return {"text": line.text}
    if line.type in _MEDIA:
        provider = line.content_provider
        external = provider is not None and provider.type == "external"
        media = Media(
            kind=_MEDIA[line.type],
            provider_id=None if external else line.id,
            url=provider.original_content_url if provider else None,
            preview_url=provider.preview_image_url if provider else None,
            filename=line.file_name,
            size=line.file_size,
            duration_ms=line.duration,
        )
        return {"media": [media]}
    if line.type == "location" and line.latitude is not None and line.longitude is not None:
        location = Location(
            latitude=line.latitude, longitude=line.longitude, name=line.title, address=line.address
        )
        return {"location": location}
    if line.type == "sticker":
        sticker = Media(kind=MediaKind.STICKER, provider_id=f"{line.package_id}/{line.sticker_id}")
        return {"media": [sticker]}
    return {"kind": MessageKind.UNSUPPORTED}
