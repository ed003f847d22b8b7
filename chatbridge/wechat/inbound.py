"""WeChat pushed messages and events -> chatbridge events.

Messages deduplicate on ``MsgId``; events (which have none) on FromUserName +
CreateTime + Event, as WeChat's docs advise, since WeChat retries a push three times
when the server does not answer within five seconds. Each push is mapped straight to
the common model, whose validation checks what chatbridge uses of it; a malformed push
becomes an UnknownEvent with the push in ``raw``.
"""

from __future__ import annotations

from typing import Any

from chatbridge.clock import from_unix
from chatbridge.errors import PayloadError
from chatbridge.models import (
    ChannelEvent,
    DeliveryState,
    Event,
    Followed,
    MediaKind,
    MessageKind,
    StatusUpdate,
    Unfollowed,
    UnknownEvent,
)
from chatbridge.plugin.parsing import Inbound
from chatbridge.wechat.qrcode import scan_of_push

_MEDIA = {
    "image": MediaKind.IMAGE,
    "voice": MediaKind.VOICE,
    "video": MediaKind.VIDEO,
    "shortvideo": MediaKind.VIDEO,
}
#: Events that WeChat counts as user interactions opening the 48-hour window.
_INTERACTIONS = {"SCAN", "CLICK"}
_CHANNEL_EVENTS = {"SCAN", "CLICK", "VIEW", "LOCATION"}
#: What every push has ("Receiving standard messages / event pushes"); the rest depends
#: on MsgType and Event.
_EVERY_PUSH_HAS = frozenset({"ToUserName", "FromUserName", "CreateTime", "MsgType"})


def parse_push(document: dict[str, Any], inbound: Inbound) -> Event:
    """The event for one decrypted, parsed push (fields named as WeChat names them).

    A push without the fields every push has is a PayloadError; any other malformed
    push becomes an UnknownEvent."""
    if missing := _EVERY_PUSH_HAS - document.keys():
        raise PayloadError(f"not a WeChat push: {', '.join(sorted(missing))} missing")
    return inbound.item("push", document, lambda push: _push(push, inbound))


def parse_pushes(document: dict[str, Any], inbound: Inbound) -> list[Event]:
    """The events of one push: :func:`parse_push`'s, and after a Followed through a QR
    code the ``SCAN`` ChannelEvent that carries its scene (``wechat/qrcode.py``)."""
    event = parse_push(document, inbound)
    scan = scan_of_push(document) if isinstance(event, Followed) else None
    if scan is None:
        return [event]
    return [event, _scan_event(event, document, scan.model_dump())]


def _scan_event(followed: Event, push: dict[str, Any], scan: dict[str, Any]) -> ChannelEvent:
    fields = followed.model_dump(include={"channel", "contact", "timestamp", "raw"})
    return ChannelEvent.model_validate(
        {
            **fields,
            "event_id": f"{followed.event_id}:SCAN",
            "name": "SCAN",
            "data": {**push, **scan},
            "opens_window": True,
        }
    )


def _push(document: dict[str, Any], inbound: Inbound) -> Event:
    sender, created = document["FromUserName"], document["CreateTime"]
    common: dict[str, Any] = {
        "contact": {"channel": inbound.channel, "address": sender},
        "timestamp": from_unix(created),
        "raw": document,
    }
    kind = document["MsgType"]
    if kind == "event":
        common["channel"] = inbound.channel
        return _event(document.get("Event") or "", f"{sender}:{created}", document, common)
    msg_id = document.get("MsgId")
    event_id = msg_id or f"{sender}:{created}:{kind}"
    return inbound.message(event_id=event_id, id=msg_id, **common, **_content(kind, document))


def _content(kind: str, push: dict[str, Any]) -> dict[str, Any]:
    """The common-model fields of a message of type ``kind`` (the common model validates
    them)."""
    if kind == "text":
        return {"kind": MessageKind.TEXT, "text": push["Content"]}
    if kind in _MEDIA:
        audio = push.get("Format")
        media = {
            "kind": _MEDIA[kind],
            "provider_id": push["MediaId"],
            "url": push.get("PicUrl"),
            "mime_type": f"audio/{audio.lower()}" if audio else None,
        }
        return {"kind": MessageKind.MEDIA, "media": [media], "text": push.get("Recognition")}
    if kind == "location":
        location = {
            "latitude": push["Location_X"],
            "longitude": push["Location_Y"],
            "name": push.get("Label"),
        }
        return {"kind": MessageKind.LOCATION, "location": location}
    if kind == "link":
        card = {"title": push["Title"], "url": push["Url"], "description": push.get("Description")}
        return {"kind": MessageKind.CARD, "card": card}
    return {"kind": MessageKind.UNSUPPORTED}


def _event(name: str, key: str, push: dict[str, Any], common: dict[str, Any]) -> Event:
    event_id = f"{key}:{name}"
    match name:
        case "subscribe":
            return Followed.model_validate({**common, "event_id": event_id})
        case "unsubscribe":
            return Unfollowed.model_validate({**common, "event_id": event_id})
        case "TEMPLATESENDJOBFINISH":
            status = push.get("Status") or ""
            failed = status != "success"
            return StatusUpdate.model_validate(
                {
                    **common,
                    "event_id": event_id,
                    "message_id": push["MsgID"],
                    "state": DeliveryState.FAILED if failed else DeliveryState.DELIVERED,
                    "errors": [{"code": status, "message": status}] if failed else [],
                }
            )
        case _ if name in _CHANNEL_EVENTS:
            scan = scan_of_push(push) if name == "SCAN" else None
            return ChannelEvent.model_validate(
                {
                    **common,
                    "event_id": event_id,
                    "name": name,
                    "data": push if scan is None else {**push, **scan.model_dump()},
                    "opens_window": name in _INTERACTIONS,
                }
            )
    return UnknownEvent.model_validate(
        {**common, "event_id": event_id, "name": name or "event", "reason": "event is not mapped"}
    )
