"""Mailgun and SendGrid webhook bodies -> chatbridge events.

- Mailgun inbound routes post a form; with a ``.../mime`` URL the raw message comes in
  ``body-mime``, otherwise as parsed fields (``sender``, ``subject``, ``body-plain``,
  ``body-html``, ``stripped-text``, ``Message-Id``, ``In-Reply-To``, ``References``,
  ``attachment-N`` files).
- Mailgun event webhooks post ``{"signature": {...}, "event-data": {...}}``.
- SendGrid's event webhook posts a JSON array of events.
"""

from __future__ import annotations

import json
from typing import Any

from chatbridge.clock import from_unix
from chatbridge.email.mime import mailbox, message_ids, parse_message, sender_mailbox, thread_key
from chatbridge.email.quotes import strip_quoted
from chatbridge.errors import PayloadError
from chatbridge.models import (
    ChannelEvent,
    DeliveryState,
    Direction,
    Event,
    Media,
    MediaKind,
    Message,
    MessageReceived,
    OptedIn,
    OptedOut,
    ProviderErrorInfo,
    StatusUpdate,
    Suppressed,
)
from chatbridge.plugin.formdata import Part
from chatbridge.plugin.parsing import Inbound
from chatbridge.webhook import digest_id


def received(message: Message, inbound: Inbound) -> MessageReceived:
    """The event for an inbound email; deduplicated on its Message-ID."""
    assert message.timestamp is not None
    return MessageReceived(
        channel=inbound.channel,
        event_id=message.id or digest_id(json.dumps(message.raw, sort_keys=True)),
        contact=message.contact,
        timestamp=message.timestamp,
        message=message,
        raw=message.raw,
    )


def mailgun_inbound(form: dict[str, Part], inbound: Inbound) -> MessageReceived:
    """The message of a Mailgun inbound-route form post (CPU-bound with ``body-mime``:
    run it in a worker thread)."""
    if "body-mime" in form:
        return received(parse_message(form["body-mime"].data, inbound), inbound)
    text = _field(form, "body-plain")
    sender = sender_mailbox(_field(form, "sender") or "")
    if sender is None:
        raise PayloadError("Mailgun inbound post has no valid sender")
    references = message_ids(_field(form, "References"))
    own_id = next(iter(message_ids(_field(form, "Message-Id"))), None)
    in_reply_to = next(iter(message_ids(_field(form, "In-Reply-To"))), None)
    attachments = [
        Media(
            kind=MediaKind.FILE,
            data=part.data,
            mime_type=part.content_type,
            filename=part.filename,
            size=len(part.data),
        )
        for name, part in form.items()
        if name.startswith("attachment-")
    ]
    message = Message(
        contact=inbound.identity(sender),
        direction=Direction.INBOUND,
        id=own_id,
        timestamp=inbound.received_at,
        subject=_field(form, "subject"),
        text=text,
        stripped_text=_field(form, "stripped-text") or (strip_quoted(text) if text else None),
        html=_field(form, "body-html"),
        media=attachments,
        reply_to=in_reply_to,
        thread=thread_key(references, in_reply_to, own_id),
        raw={k: v.text for k, v in form.items() if not k.startswith("attachment-")},
    )
    return received(message, inbound)


def _field(form: dict[str, Part], name: str) -> str | None:
    part = form.get(name)
    return part.text if part is not None else None


def mailgun_event(data: dict[str, Any], inbound: Inbound) -> list[Event]:
    """The events of one Mailgun ``event-data`` object."""
    return inbound.items("event", data, lambda item: _mailgun(item, inbound))


def _mailgun(data: dict[str, Any], inbound: Inbound) -> list[Event]:
    name = str(data["event"])
    contact = inbound.identity(mailbox(str(data["recipient"])))
    timestamp = from_unix(data["timestamp"])
    event_id = str(data.get("id") or digest_id(json.dumps(data, sort_keys=True)))
    message_id = str(((data.get("message") or {}).get("headers") or {}).get("message-id", ""))
    common: dict[str, Any] = {
        "channel": inbound.channel,
        "contact": contact,
        "timestamp": timestamp,
        "raw": data,
    }
    permanent = data.get("severity") == "permanent"
    status = data.get("delivery-status") or {}
    error = ProviderErrorInfo(
        code=str(status.get("code", "")),
        message=str(status.get("message") or data.get("reason") or name),
        details=status.get("description") or None,
    )
    match name:
        case "accepted":
            return [_status(event_id, message_id, DeliveryState.SENT, common)]
        case "delivered":
            return [_status(event_id, message_id, DeliveryState.DELIVERED, common)]
        case "opened":
            return [_status(event_id, message_id, DeliveryState.READ, common)]
        case "failed" | "rejected":
            events: list[Event] = [
                _status(event_id, message_id, DeliveryState.FAILED, common, error)
            ]
            if permanent:
                events.append(
                    Suppressed(event_id=event_id + ":suppress", reason="hard bounce", **common)
                )
            return events
        case "complained":
            return [Suppressed(event_id=event_id, reason="spam complaint", **common)]
        case "unsubscribed":
            return [OptedOut(event_id=event_id, reason="unsubscribed", **common)]
        case "clicked":
            return [ChannelEvent(event_id=event_id, name=name, data=data, **common)]
    return [inbound.unknown(name, "Mailgun event is not mapped", data, timestamp=timestamp)]


def _status(
    event_id: str,
    message_id: str,
    state: DeliveryState,
    common: dict[str, Any],
    error: ProviderErrorInfo | None = None,
) -> StatusUpdate:
    return StatusUpdate(
        event_id=event_id,
        message_id=message_id,
        state=state,
        errors=[error] if error else [],
        **common,
    )


def sendgrid_events(document: Any, inbound: Inbound) -> list[Event]:
    """The events of a SendGrid event webhook body (a JSON array)."""
    if not isinstance(document, list):
        raise PayloadError("a SendGrid event webhook body is a JSON array")

    def event(item: dict[str, Any]) -> Event:
        return _sendgrid(item, inbound)

    events: list[Event] = []
    for item in document:
        if not isinstance(item, dict):
            events.append(inbound.unknown("event", "not an object", {"item": item}))
            continue
        events.append(inbound.item("event", item, event))
    return events


def _sendgrid(item: dict[str, Any], inbound: Inbound) -> Event:
    name = str(item["event"])
    common: dict[str, Any] = {
        "channel": inbound.channel,
        "event_id": str(item.get("sg_event_id") or digest_id(json.dumps(item, sort_keys=True))),
        "contact": inbound.identity(mailbox(str(item["email"]))),
        "timestamp": from_unix(item["timestamp"]),
        "raw": item,
    }
    ids = message_ids(str(item.get("smtp-id", "")))
    message_id = ids[0] if ids else str(item.get("sg_message_id", ""))
    reason = str(item.get("reason") or item.get("response") or name)
    states = {
        "processed": DeliveryState.SENT,
        "delivered": DeliveryState.DELIVERED,
        "open": DeliveryState.READ,
        "dropped": DeliveryState.FAILED,
    }
    if name in states:
        errors = [ProviderErrorInfo(code=name, message=reason)] if name == "dropped" else []
        return StatusUpdate(message_id=message_id, state=states[name], errors=errors, **common)
    match name:
        case "bounce" if item.get("type") == "blocked":
            error = ProviderErrorInfo(code="blocked", message=reason)
            return StatusUpdate(
                message_id=message_id, state=DeliveryState.FAILED, errors=[error], **common
            )
        case "bounce":
            return Suppressed(reason=f"hard bounce: {reason}", **common)
        case "spamreport":
            return Suppressed(reason="spam complaint", **common)
        case "unsubscribe" | "group_unsubscribe":
            return OptedOut(reason=name, **common)
        case "group_resubscribe":
            return OptedIn(**common)
        case "click" | "deferred":
            return ChannelEvent(name=name, data=item, **common)
    reason = "SendGrid event is not mapped"
    return inbound.unknown(name, reason, item, timestamp=common["timestamp"])
