"""Twilio webhook parameters -> chatbridge events ("Messaging webhooks": incoming
message and status callback parameters)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chatbridge.errors import PayloadError
from chatbridge.models import (
    ChannelEvent,
    DeliveryState,
    Event,
    Identity,
    MediaKind,
    ProviderErrorInfo,
    StatusUpdate,
    UnknownEvent,
)
from chatbridge.plugin.parsing import message_received, parse_item, unknown_event

CHANNEL = "sms"
_STATES = {
    "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.READ,
    "undelivered": DeliveryState.FAILED,
    "failed": DeliveryState.FAILED,
}
#: Intermediate states reported as ChannelEvents ("Message status values").
_PROGRESS = frozenset({"accepted", "scheduled", "queued", "sending", "receiving", "canceled"})
_MEDIA_KINDS = {"image": MediaKind.IMAGE, "audio": MediaKind.AUDIO, "video": MediaKind.VIDEO}


def parse_params(params: dict[str, str], received_at: datetime) -> Event:
    """:func:`parse`, or an UnknownEvent with ``params`` for a webhook whose values the
    common model refuses."""
    return parse_item(CHANNEL, "webhook", params, lambda p: parse(p, received_at), received_at)


def parse_json(document: Any, received_at: datetime) -> Event:
    """A JSON webhook: one carrying message parameters is read as their form would be;
    any other (signed) document is kept whole as an UnknownEvent."""
    if isinstance(document, dict) and (document.get("MessageSid") or document.get("SmsSid")):
        params = {name: value for name, value in document.items() if isinstance(value, str)}
        return parse_params(params, received_at)
    raw = document if isinstance(document, dict) else {"document": document}
    reason = "JSON webhook is not a message or status callback"
    return unknown_event(CHANNEL, "json", reason, raw, received_at)


def parse(params: dict[str, str], received_at: datetime) -> Event:
    """The event of one Twilio webhook: an incoming message or a status callback."""
    sid = params.get("MessageSid") or params.get("SmsSid")
    if not sid:
        raise PayloadError("Twilio webhook has no MessageSid")
    status = params.get("MessageStatus") or params.get("SmsStatus") or "received"
    if status == "received":
        return _message(sid, params, received_at)
    return _status(sid, status, params, received_at)


def _message(sid: str, params: dict[str, str], received_at: datetime) -> Event:
    sender = params.get("From")
    if not sender:
        raise PayloadError("Twilio message has no From")
    try:
        count = int(params.get("NumMedia", "0"))
    except ValueError as exc:
        raise PayloadError("NumMedia is not a number") from exc
    media = []
    for index in range(min(count, 10)):
        url = params.get(f"MediaUrl{index}")
        mime = params.get(f"MediaContentType{index}", "application/octet-stream")
        if url:
            kind = _MEDIA_KINDS.get(mime.partition("/")[0], MediaKind.FILE)
            media.append({"kind": kind, "url": url, "mime_type": mime})
    return message_received(
        CHANNEL,
        sid,
        {"channel": CHANNEL, "address": sender},
        received_at,
        params,
        id=sid,
        text=params.get("Body"),
        media=media,
    )


def _status(sid: str, status: str, params: dict[str, str], received_at: datetime) -> Event:
    recipient = params.get("To")
    common: dict[str, Any] = {
        "channel": CHANNEL,
        "event_id": f"{sid}:{status}",
        "contact": Identity(channel=CHANNEL, address=recipient) if recipient else None,
        "timestamp": received_at,
        "raw": dict(params),
    }
    state = _STATES.get(status)
    if status in _PROGRESS:
        return ChannelEvent(name=f"status:{status}", data=dict(params), **common)
    if state is None:
        return UnknownEvent(name=f"status:{status}", reason="status value is not mapped", **common)
    code = params.get("ErrorCode")
    errors = (
        [ProviderErrorInfo(code=code, message=params.get("ErrorMessage", f"Twilio error {code}"))]
        if code
        else []
    )
    return StatusUpdate(message_id=sid, state=state, errors=errors, **common)
