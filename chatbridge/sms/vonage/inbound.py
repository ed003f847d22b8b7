"""Vonage webhooks -> chatbridge events: SMS API inbound messages and delivery receipts
("Webhooks > Inbound SMS / Delivery receipt"), and Messages API inbound and status
webhooks (JSON)."""

from __future__ import annotations

from typing import Any

from chatbridge.errors import PayloadError
from chatbridge.models import (
    ChannelEvent,
    DeliveryState,
    Event,
    Identity,
    MessageReceived,
    ProviderErrorInfo,
    StatusUpdate,
    UnknownEvent,
)
from chatbridge.plugin.parsing import Inbound

_DLR_STATES = {
    "delivered": DeliveryState.DELIVERED,
    "expired": DeliveryState.FAILED,
    "failed": DeliveryState.FAILED,
    "rejected": DeliveryState.FAILED,
}
_DLR_PROGRESS = frozenset({"accepted", "buffered", "unknown"})
_MESSAGES_STATES = {
    "submitted": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED,
    "read": DeliveryState.READ,
    "rejected": DeliveryState.FAILED,
    "undeliverable": DeliveryState.FAILED,
}


def e164(msisdn: str) -> str:
    """Vonage writes numbers without the leading +."""
    return msisdn if msisdn.startswith("+") else f"+{msisdn}"


def parse(params: dict[str, Any], inbound: Inbound) -> Event:
    """The event of one Vonage webhook."""
    if "message_uuid" in params:
        return _messages_api(params, inbound)
    message_id, msisdn = params.get("messageId"), params.get("msisdn")
    if not message_id or not msisdn:
        raise PayloadError("Vonage webhook has no messageId/msisdn")
    contact = inbound.identity(e164(str(msisdn)))
    if "text" in params or params.get("type") in ("text", "unicode"):
        return _received(str(message_id), contact, params.get("text"), params, inbound)
    status = str(params.get("status", ""))
    common: dict[str, Any] = {
        "channel": inbound.channel,
        "event_id": f"{message_id}:{status}",
        "contact": contact,
        "timestamp": inbound.received_at,
        "raw": params,
    }
    if status in _DLR_PROGRESS:
        return ChannelEvent(name=f"status:{status}", data=params, **common)
    state = _DLR_STATES.get(status)
    if state is None:
        return UnknownEvent(
            name=f"status:{status}", reason="receipt status is not mapped", **common
        )
    code = str(params.get("err-code", "0"))
    errors = (
        [ProviderErrorInfo(code=code, message=f"Vonage {status} ({code})")] if code != "0" else []
    )
    return StatusUpdate(message_id=str(message_id), state=state, errors=errors, **common)


def _received(
    message_id: str, contact: Identity, text: Any, raw: dict[str, Any], inbound: Inbound
) -> MessageReceived:
    text = str(text) if text is not None else None
    return inbound.message(message_id, contact, inbound.received_at, raw, id=message_id, text=text)


def _messages_api(params: dict[str, Any], inbound: Inbound) -> Event:
    uuid = str(params["message_uuid"])
    if "status" not in params:
        sender = params.get("from")
        if not isinstance(sender, str):
            raise PayloadError("Messages API webhook has no from")
        contact = inbound.identity(e164(sender))
        return _received(uuid, contact, params.get("text"), params, inbound)
    status = str(params["status"])
    recipient = params.get("to")
    common: dict[str, Any] = {
        "channel": inbound.channel,
        "event_id": f"{uuid}:{status}",
        "contact": inbound.identity(e164(recipient)) if isinstance(recipient, str) else None,
        "timestamp": inbound.received_at,
        "raw": params,
    }
    state = _MESSAGES_STATES.get(status)
    if state is None:
        return UnknownEvent(name=f"status:{status}", reason="status is not mapped", **common)
    error = params.get("error") if isinstance(params.get("error"), dict) else None
    errors = (
        [ProviderErrorInfo(code=str(error.get("type", "")), message=str(error.get("title", "")))]
        if error
        else []
    )
    return StatusUpdate(message_id=uuid, state=state, errors=errors, **common)
