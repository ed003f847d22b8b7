"""Twilio webhook parameters -> chatbridge events ("Messaging webhooks": incoming
message and status callback parameters)."""

from __future__ import annotations

from typing import Any

from chatbridge.errors import PayloadError
from chatbridge.models import (
    ChannelEvent,
    DeliveryState,
    Event,
    MediaKind,
    ProviderErrorInfo,
    StatusUpdate,
    UnknownEvent,
)
from chatbridge.plugin.parsing import Inbound

_STATES = {
    "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.READ,
    "undelivered": DeliveryState.FAILED,
    "failed": DeliveryState.FAILED,
    "canceled": DeliveryState.FAILED,  # a scheduled message that will never be sent
}
#: Intermediate states reported as ChannelEvents ("Message status values").
_PROGRESS = frozenset({"accepted", "scheduled", "queued", "sending", "receiving"})
_MEDIA_KINDS = {"image": MediaKind.IMAGE, "audio": MediaKind.AUDIO, "video": MediaKind.VIDEO}


def parse_params(params: dict[str, str], inbound: Inbound) -> Event:
    """:func:`parse`, or an UnknownEvent with ``params`` for a webhook whose values the
    common model refuses."""
    return inbound.item("webhook", params, lambda p: parse(p, inbound))


def parse_json(document: Any, inbound: Inbound) -> Event:
    """A JSON webhook: one carrying message parameters is read as their form would be;
    any other (signed) document is kept whole as an UnknownEvent."""
    if isinstance(document, dict) and (document.get("MessageSid") or document.get("SmsSid")):
        params = {name: value for name, value in document.items() if isinstance(value, str)}
        return parse_params(params, inbound)
    raw = document if isinstance(document, dict) else {"document": document}
    reason = "JSON webhook is not a message or status callback"
    return inbound.unknown("json", reason, raw)


def parse(params: dict[str, str], inbound: Inbound) -> Event:
    """The event of one Twilio webhook: an incoming message or a status callback."""
    sid = params.get("MessageSid") or params.get("SmsSid")
    if not sid:
        raise PayloadError("Twilio webhook has no MessageSid")
    status = params.get("MessageStatus") or params.get("SmsStatus") or "received"
    if status == "received":
        return _message(sid, params, inbound)
    return _status(sid, status, params, inbound)


def _message(sid: str, params: dict[str, str], inbound: Inbound) -> Event:
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
    return inbound.message(
        sid,
        sender,
        inbound.received_at,
        params,
        id=sid,
        text=params.get("Body"),
        media=media,
    )


def _status(sid: str, status: str, params: dict[str, str], inbound: Inbound) -> Event:
    recipient = params.get("To")
    common: dict[str, Any] = {
        "channel": inbound.channel,
        "event_id": f"{sid}:{status}",
        "contact": inbound.identity(recipient) if recipient else None,
        "timestamp": inbound.received_at,
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
