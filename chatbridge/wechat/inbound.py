"""WeChat pushed messages and events -> chatbridge events.

Messages deduplicate on ``MsgId``; events (which have none) on FromUserName +
CreateTime + Event, as WeChat's docs advise, since WeChat retries a push three times
when the server does not answer within five seconds.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from chatbridge.clock import from_unix
from chatbridge.errors import PayloadError
from chatbridge.models import (
    Card,
    ChannelEvent,
    DeliveryState,
    Event,
    Followed,
    Identity,
    Location,
    Media,
    MediaKind,
    ProviderErrorInfo,
    StatusUpdate,
    Unfollowed,
    UnknownEvent,
)
from chatbridge.parsing import message_received
from chatbridge.webhook import invalid_reason
from chatbridge.wechat.payloads import WXPush

CHANNEL = "wechat"
_MEDIA = {
    "image": MediaKind.IMAGE,
    "voice": MediaKind.VOICE,
    "video": MediaKind.VIDEO,
    "shortvideo": MediaKind.VIDEO,
}
#: Events that WeChat counts as user interactions opening the 48-hour window.
_INTERACTIONS = {"SCAN", "CLICK"}
_CHANNEL_EVENTS = {"SCAN", "CLICK", "VIEW", "LOCATION"}


def parse_push(document: dict[str, Any]) -> Event:
    """The event for one decrypted, parsed push."""
    try:
        push = WXPush.model_validate(document)
    except ValidationError as exc:
        raise PayloadError(f"not a WeChat push: {invalid_reason(exc)}") from exc
    contact = Identity(channel=CHANNEL, address=push.from_user)
    common: dict[str, Any] = {
        "channel": CHANNEL,
        "contact": contact,
        "timestamp": from_unix(push.create_time),
        "raw": document,
    }
    if push.msg_type == "event":
        return _event(push, common)
    event_id = push.msg_id or f"{push.from_user}:{push.create_time}:{push.msg_type}"
    return message_received(event_id=event_id, id=push.msg_id, **common, **_content(push))


def _content(push: WXPush) -> dict[str, Any]:
    if push.msg_type == "text":
        return {"text": push.content}
    if push.msg_type in _MEDIA:
        media = Media(
            kind=_MEDIA[push.msg_type],
            provider_id=push.media_id,
            url=push.pic_url,
            mime_type=f"audio/{push.format.lower()}" if push.format else None,
        )
        return {"media": [media], "text": push.recognition}
    if push.msg_type == "location" and push.location_x is not None and push.location_y is not None:
        location = Location(latitude=push.location_x, longitude=push.location_y, name=push.label)
        return {"location": location}
    if push.msg_type == "link" and push.title and push.url:
        return {"card": Card(title=push.title, url=push.url, description=push.description)}
    return {"kind": "unsupported"}


def _event(push: WXPush, common: dict[str, Any]) -> Event:
    name = push.event or ""
    event_id = f"{push.from_user}:{push.create_time}:{name}"
    match name:
        case "subscribe":
            return Followed(event_id=event_id, **common)
        case "unsubscribe":
            return Unfollowed(event_id=event_id, **common)
        case "TEMPLATESENDJOBFINISH" if push.template_msg_id:
            failed = push.status != "success"
            errors = [ProviderErrorInfo(code=push.status or "", message=push.status or "")]
            return StatusUpdate(
                event_id=event_id,
                message_id=push.template_msg_id,
                state=DeliveryState.FAILED if failed else DeliveryState.DELIVERED,
                errors=errors if failed else [],
                **common,
            )
        case _ if name in _CHANNEL_EVENTS:
            data = {k: v for k, v in push.model_dump().items() if v is not None}
            return ChannelEvent(
                event_id=event_id,
                name=name,
                data=data,
                opens_window=name in _INTERACTIONS,
                **common,
            )
    return UnknownEvent(
        event_id=event_id, name=name or "event", reason="event is not mapped", **common
    )
