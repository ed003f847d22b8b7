"""WhatsApp webhook notifications -> chatbridge events.

The envelope (object / entry / changes) is validated as the JSON is parsed; if it is
malformed the whole request is a :class:`~chatbridge.errors.PayloadError`. Each message
and status inside is mapped straight to the common model, whose validation checks what
chatbridge uses of it: one malformed or unknown item becomes an
:class:`~chatbridge.models.UnknownEvent` with the item in ``raw``, so the rest of the
batch is still delivered and nothing is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from chatbridge.clock import from_unix
from chatbridge.errors import PayloadError
from chatbridge.models import (
    ChannelEvent,
    DeliveryState,
    Event,
    MediaKind,
    MessageKind,
    StatusUpdate,
    TemplateUpdate,
    UnknownEvent,
)
from chatbridge.plugin.parsing import Inbound
from chatbridge.webhook import digest_id, invalid_reason
from chatbridge.whatsapp.payloads import (
    ENVELOPE,
    NOTIFICATION,
    VALUE,
    WAChange,
    WAEntry,
    WANotification,
    WAValue,
)

_MEDIA_TYPES = {
    "image": MediaKind.IMAGE,
    "audio": MediaKind.AUDIO,
    "video": MediaKind.VIDEO,
    "document": MediaKind.DOCUMENT,
    "sticker": MediaKind.STICKER,
}
_MEDIA_FIELDS = ("mime_type", "sha256", "caption", "filename")
_STATES = {state.value: state for state in DeliveryState}
#: The WhatsApp Business Account fields about templates (Meta's webhook references).
TEMPLATE_FIELDS = frozenset(
    {
        "message_template_status_update",
        "message_template_quality_update",
        "template_category_update",
    }
)


def parse_notification(body: bytes, inbound: Inbound) -> list[Event]:
    """All events of one webhook POST body, in payload order.

    ``inbound.received_at`` stamps events the provider gives no time (unknown items,
    errors).
    """
    try:
        notification = NOTIFICATION.validate_json(body)
    except ValidationError:
        return _parse_change_by_change(body, inbound)
    _check_object(notification)
    return [
        event
        for entry in notification["entry"]
        for change in entry["changes"]
        for event in _parse_change(entry, change, inbound)
    ]


def _parse_change_by_change(body: bytes, inbound: Inbound) -> list[Event]:
    """The slow path, for a body that failed validation as a whole: if its envelope is
    sound, each change's value is validated on its own and a malformed one is kept as an
    UnknownEvent, so the other changes are still delivered."""
    try:
        notification = ENVELOPE.validate_json(body)
    except ValidationError as exc:
        raise PayloadError(f"not a WhatsApp webhook notification: {invalid_reason(exc)}") from exc
    _check_object(notification)
    events: list[Event] = []
    for entry in notification["entry"]:
        for change in entry["changes"]:
            if change["field"] in TEMPLATE_FIELDS:
                events += _parse_change(entry, change, inbound)
                continue
            if change["field"] != "messages":
                events.append(_field_not_mapped(change, inbound))
                continue
            try:
                value = VALUE.validate_python(change["value"])
            except ValidationError as exc:
                reason = f"malformed value: {invalid_reason(exc)}"
                events.append(inbound.unknown("messages", reason, dict(change)))
                continue
            events += _parse_value(value, inbound)
    return events


def _check_object(notification: WANotification[Any]) -> None:
    if notification["object"] != "whatsapp_business_account":
        raise PayloadError(f"unexpected notification object {notification['object']!r}")


def _parse_change(entry: WAEntry[Any], change: WAChange[Any], inbound: Inbound) -> list[Event]:
    field = change["field"]
    if field in TEMPLATE_FIELDS:
        item = {"id": entry["id"], "time": entry.get("time"), **dict(change)}
        return [inbound.item(field, item, lambda item: _template_update(item, inbound))]
    if field != "messages":
        return [_field_not_mapped(change, inbound)]
    return _parse_value(change["value"], inbound)


def _template_update(item: dict[str, Any], inbound: Inbound) -> TemplateUpdate:
    """A template's review status, quality score or category changed (``item``: the
    change with its entry's ``id``, the WABA, and ``time``). The event id joins the
    template, the field, the new value and Meta's time: a redelivery deduplicates, a
    later change does not."""
    field, value, at = item["field"], item["value"], item["time"]
    template_id = str(value["message_template_id"])
    fields: dict[str, Any]
    match field:
        case "message_template_status_update":
            fields = {
                "status": value["event"],
                "reason": value.get("reason"),
                "category": value.get("message_template_category"),
            }
        case "message_template_quality_update":
            fields = {"quality": value["new_quality_score"]}
        case _:  # template_category_update
            fields = {
                "category": value["new_category"],
                "previous_category": value.get("previous_category"),
            }
    new = next(iter(fields.values()))
    return TemplateUpdate(
        channel=inbound.channel,
        event_id=f"template:{template_id}:{field}:{new}:{at or ''}",
        timestamp=inbound.received_at if at is None else from_unix(at),
        template_id=template_id,
        name=value.get("message_template_name"),
        language=value.get("message_template_language"),
        raw=item,
        **fields,
    )


def _field_not_mapped(change: WAChange[Any], inbound: Inbound) -> UnknownEvent:
    return inbound.unknown(change["field"], "field is not mapped", dict(change))


def _parse_value(value: WAValue, inbound: Inbound) -> list[Event]:
    names = {c["wa_id"]: c.get("profile", {}).get("name") for c in value.get("contacts", [])}

    def message(item: dict[str, Any]) -> Event:
        return _message(item, names, inbound)

    def status(item: dict[str, Any]) -> Event:
        return _status(item, inbound)

    events = [inbound.item("message", i, message) for i in value.get("messages", [])]
    events += [inbound.item("status", i, status) for i in value.get("statuses", [])]
    events += [
        ChannelEvent(
            channel=inbound.channel,
            event_id="error:" + digest_id(json.dumps(error, sort_keys=True)),
            timestamp=inbound.received_at,
            name="error",
            data=error,
            raw=dict(value),
        )
        for error in value.get("errors", [])
    ]
    return events


def _message(item: dict[str, Any], names: Mapping[str, str | None], inbound: Inbound) -> Event:
    sender = item["from"]
    context = item.get("context") or {}
    return inbound.message(
        item["id"],
        {"channel": inbound.channel, "address": sender},
        from_unix(item["timestamp"]),
        item,
        contact_name=names.get(sender),
        id=item["id"],
        reply_to=context.get("id"),
        **_content(item["type"], item.get(item["type"])),
    )


def _content(kind: str, body: Any) -> dict[str, Any]:
    """The common-model fields of a message of type ``kind`` whose content is ``body``
    (the common model validates them)."""
    if kind in _MEDIA_TYPES:
        voice = kind == "audio" and body.get("voice") is True
        media = {field: body.get(field) for field in _MEDIA_FIELDS}
        media.update(kind=MediaKind.VOICE if voice else _MEDIA_TYPES[kind], provider_id=body["id"])
        return {"kind": MessageKind.MEDIA, "media": [media]}
    match kind:
        case "text":
            return {"kind": MessageKind.TEXT, "text": body["body"]}
        case "location":
            return {"kind": MessageKind.LOCATION, "location": body}
        case "contacts":
            return {"kind": MessageKind.CONTACTS}
        case "interactive":
            return _interactive_reply(body)
        case "button":
            reply = {"id": body.get("payload") or body["text"], "title": body["text"]}
            return {"kind": MessageKind.INTERACTIVE_REPLY, "interactive_reply": reply}
        case "reaction":
            reaction = {"message_id": body["message_id"], "emoji": body.get("emoji") or ""}
            return {"kind": MessageKind.REACTION, "reaction": reaction}
        case "order":
            return {"kind": MessageKind.ORDER, "text": body.get("text")}
        case "system":
            return {"kind": MessageKind.SYSTEM, "text": body.get("body")}
    return {"kind": MessageKind.UNSUPPORTED}


def _interactive_reply(body: dict[str, Any]) -> dict[str, Any]:
    reply = body.get("button_reply") or body.get("list_reply")
    if reply is None and body.get("nfm_reply") is not None:
        name = str(body["nfm_reply"].get("name", "flow"))
        reply = {"id": name, "title": name}
    if reply is None:
        return {"kind": MessageKind.UNSUPPORTED}
    return {"kind": MessageKind.INTERACTIVE_REPLY, "interactive_reply": reply}


def _status(item: dict[str, Any], inbound: Inbound) -> Event:
    state = _STATES.get(item["status"])
    if state is None:
        return inbound.unknown(f"status:{item['status']}", "status value is not mapped", item)
    return StatusUpdate(
        channel=inbound.channel,
        event_id=f"{item['id']}:{item['status']}",
        contact={"channel": inbound.channel, "address": item["recipient_id"]},
        timestamp=from_unix(item["timestamp"]),
        message_id=item["id"],
        state=state,
        errors=[_error_info(error) for error in item.get("errors", [])],
        raw=item,
    )


def _error_info(error: dict[str, Any]) -> dict[str, Any]:
    details = (error.get("error_data") or {}).get("details")
    return {
        "code": str(error["code"]),
        "message": error.get("message") or error.get("title") or "",
        "details": str(details) if details is not None else None,
    }
