"""LINE webhook events -> chatbridge events.

Every event has a ``webhookEventId`` (the dedup key; redeliveries keep it and set
``deliveryContext.isRedelivery``). Events that can be answered carry a ``replyToken``,
kept on the event so the channel can reply for free. Each event is mapped straight to
the common model, whose validation checks what chatbridge uses of it; a malformed event
becomes an UnknownEvent with the event in ``raw``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from chatbridge.clock import from_unix
from chatbridge.errors import PayloadError
from chatbridge.line.payloads import WEBHOOK
from chatbridge.models import (
    ChannelEvent,
    Event,
    Followed,
    MediaKind,
    MessageKind,
    MessageReceived,
    Unfollowed,
    UnknownEvent,
)
from chatbridge.plugin.parsing import Inbound
from chatbridge.webhook import invalid_reason

_MEDIA = {
    "image": MediaKind.IMAGE,
    "video": MediaKind.VIDEO,
    "audio": MediaKind.AUDIO,
    "file": MediaKind.FILE,
}
#: Events kept as ChannelEvents, with the field that holds their data.
_CHANNEL_EVENTS = {
    "join": None,
    "leave": None,
    "beacon": "beacon",
    "memberJoined": "joined",
    "memberLeft": "left",
}


def parse_webhook(body: bytes, inbound: Inbound) -> list[Event]:
    """All events of one webhook body; an empty list for LINE's URL verification POST."""
    try:
        webhook = WEBHOOK.validate_json(body)
    except ValidationError as exc:
        raise PayloadError(f"not a LINE webhook body: {invalid_reason(exc)}") from exc

    def event(item: dict[str, Any]) -> Event:
        return _event(item, inbound)

    return [inbound.item("event", item, event) for item in webhook["events"]]


def _event(item: dict[str, Any], inbound: Inbound) -> Event:
    source = item.get("source") or {}
    # Replies to a group chat go to the group or room, else to the user.
    address = source.get("groupId") or source.get("roomId") or source.get("userId")
    contact = {"channel": inbound.channel, "address": address} if address else None
    common: dict[str, Any] = {
        "event_id": item["webhookEventId"],
        "contact": contact,
        "timestamp": from_unix(item["timestamp"] / 1000),
        # A standby channel must not answer: its reply token is not ours to use.
        "reply_token": item.get("replyToken") if item.get("mode") != "standby" else None,
        "raw": item,
    }
    match item["type"]:
        case "message" if contact:
            return _message(item["message"], common, inbound)
        case "postback" if contact:
            reply = {"id": item["postback"]["data"]}
            return inbound.message(
                kind=MessageKind.INTERACTIVE_REPLY, interactive_reply=reply, **common
            )
    # The other events are validated with the channel's name beside the common fields.
    common["channel"] = inbound.channel
    match item["type"]:
        case "follow":
            return Followed.model_validate(common)
        case "unfollow":
            return Unfollowed.model_validate(common)
        case name if name in _CHANNEL_EVENTS:
            data = item.get(_CHANNEL_EVENTS[name] or "") or {}
            return ChannelEvent.model_validate({**common, "name": name, "data": data})
    # Unmapped events keep their reply token too (videoPlayComplete, membership...).
    reason = "event type is not mapped"
    return UnknownEvent.model_validate({**common, "name": item["type"], "reason": reason})


def _message(line: dict[str, Any], common: dict[str, Any], inbound: Inbound) -> MessageReceived:
    content = _content(line["type"], line)
    return inbound.message(id=line["id"], reply_to=line.get("quotedMessageId"), **common, **content)


def _content(kind: str, line: dict[str, Any]) -> dict[str, Any]:
    """The common-model fields of a message of type ``kind`` (the common model validates
    them)."""
    if kind == "text":
        return {"kind": MessageKind.TEXT, "text": line["text"]}
    if kind in _MEDIA:
        provider = line.get("contentProvider") or {}
        media = {
            "kind": _MEDIA[kind],
            "provider_id": None if provider.get("type") == "external" else line["id"],
            "url": provider.get("originalContentUrl"),
            "preview_url": provider.get("previewImageUrl"),
            "filename": line.get("fileName"),
            "size": line.get("fileSize"),
            "duration_ms": line.get("duration"),
        }
        return {"kind": MessageKind.MEDIA, "media": [media]}
    if kind == "location":
        location = {
            "latitude": line["latitude"],
            "longitude": line["longitude"],
            "name": line.get("title"),
            "address": line.get("address"),
        }
        return {"kind": MessageKind.LOCATION, "location": location}
    if kind == "sticker":
        sticker = {
            "kind": MediaKind.STICKER,
            "provider_id": f"{line['packageId']}/{line['stickerId']}",
        }
        return {"kind": MessageKind.MEDIA, "media": [sticker]}
    return {"kind": MessageKind.UNSUPPORTED}
