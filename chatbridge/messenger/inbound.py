"""Messenger Platform webhooks (Messenger and Instagram) -> chatbridge events.

The envelope (``object`` / ``entry[]`` / ``messaging[]``) is validated as the JSON is
parsed (pydantic-core caps its depth); a malformed envelope is a
:class:`~chatbridge.errors.PayloadError`. Each ``messaging[]`` item is mapped on its own
with :meth:`~chatbridge.plugin.Inbound.items`: a malformed or unknown one becomes an
:class:`~chatbridge.models.UnknownEvent` carrying it, and the rest of the batch survives.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic needs it for TypedDicts before 3.12

from chatbridge.clock import from_unix
from chatbridge.errors import PayloadError
from chatbridge.models import (
    ChannelEvent,
    DeliveryState,
    Event,
    MediaKind,
    MessageKind,
    StatusUpdate,
)
from chatbridge.plugin import Inbound
from chatbridge.webhook import digest_id, invalid_reason

#: Attachment types whose ``payload.url`` chatbridge keeps as media; other types
#: (``fallback``, ``share``, ``ig_post``, ``ephemeral``...) stay in ``raw``.
MEDIA_TYPES = {
    "image": MediaKind.IMAGE,
    "video": MediaKind.VIDEO,
    "audio": MediaKind.AUDIO,
    "file": MediaKind.FILE,
    "reel": MediaKind.VIDEO,
    "ig_reel": MediaKind.VIDEO,
    # Instagram: the customer mentioned the account in a story; the webhook does not
    # say whether the story is an image or a video.
    "story_mention": MediaKind.FILE,
}
_ADDRESSING = ("sender", "recipient", "timestamp")
_ECHO_FIELDS: tuple[str, ...] = ("mid", "app_id", "metadata", "text")


class _Entry(TypedDict, total=False):
    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]

    messaging: list[dict[str, Any]]
    standby: list[dict[str, Any]]
    changes: list[dict[str, Any]]


class _Notification(TypedDict):
    object: str
    entry: list[_Entry]


_NOTIFICATION = TypeAdapter(_Notification)


def parse_notification(body: bytes, inbound: Inbound, webhook_object: str) -> list[Event]:
    """All events of one webhook POST body whose ``object`` must be ``webhook_object``."""
    try:
        notification = _NOTIFICATION.validate_json(body)
    except ValidationError as exc:
        reason = invalid_reason(exc)
        raise PayloadError(f"not a {inbound.channel} webhook notification: {reason}") from exc
    if notification["object"] != webhook_object:
        raise PayloadError(f"unexpected notification object {notification['object']!r}")
    mapper = _Mapper(inbound)
    events: list[Event] = []
    for entry in notification["entry"]:
        for item in entry.get("messaging", []):
            events += inbound.items("messaging", item, mapper.events)
        for item in entry.get("standby", []):
            reason = "another app controls the thread (handover protocol)"
            events.append(inbound.unknown("standby", reason, item))
        for change in entry.get("changes", []):
            field = str(change.get("field", "changes"))
            events.append(inbound.unknown(field, "field is not mapped", change))
    return events


def from_millis(value: Any) -> datetime:
    """An aware datetime from epoch milliseconds (a number, or a string of one)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"a timestamp must be a number, not {type(value).__name__}")
    return from_unix(float(value) / 1000)


class _Mapper:
    """Maps one ``messaging[]`` item to its events; raises on a malformed one."""

    def __init__(self, inbound: Inbound) -> None:
        self.inbound = inbound

    def events(self, item: dict[str, Any]) -> list[Event]:
        if "message" in item:
            return [self._message(item, item["message"])]
        if "postback" in item:
            return [self._postback(item, item["postback"])]
        if "reaction" in item:
            return [self._reaction(item, item["reaction"])]
        if "read" in item:
            return [self._read(item, item["read"])]
        if "delivery" in item:
            return self._deliveries(item, item["delivery"])
        name = next((key for key in item if key not in _ADDRESSING), "messaging")
        return [self.inbound.unknown(name, "event type is not mapped", item)]

    def _message(self, item: dict[str, Any], message: dict[str, Any]) -> Event:
        if message.get("is_echo"):
            # Sent by the page itself (this app, another app or the inbox): the customer
            # is the recipient, and the echo does not open the window.
            data = {k: message[k] for k in _ECHO_FIELDS if k in message}
            return self._channel_event("echo", f"echo:{message['mid']}", item, "recipient", data)
        if message.get("is_deleted"):  # Instagram: the customer deleted a message
            mid = message["mid"]
            return self._channel_event(
                "message_deleted", f"deleted:{mid}", item, "sender", {"mid": mid}
            )
        return self.inbound.message(
            message["mid"],
            item["sender"]["id"],
            from_millis(item["timestamp"]),
            item,
            id=message["mid"],
            reply_to=_reply_to(message.get("reply_to")),
            **_content(message),
        )

    def _postback(self, item: dict[str, Any], postback: dict[str, Any]) -> Event:
        mid = postback.get("mid")  # absent before v11 (Instagram) and on some entry points
        return self.inbound.message(
            mid or f"postback:{_digest(item)}",
            item["sender"]["id"],
            from_millis(item["timestamp"]),
            item,
            id=mid,
            kind=MessageKind.INTERACTIVE_REPLY,
            interactive_reply={"id": postback["payload"], "title": postback.get("title")},
        )

    def _reaction(self, item: dict[str, Any], reaction: dict[str, Any]) -> Event:
        action = reaction["action"]
        if action not in ("react", "unreact"):
            raise ValueError(f"reaction action {action!r} is neither react nor unreact")
        # An unreact may omit both the reaction name and the emoji.
        emoji = "" if action == "unreact" else reaction.get("emoji") or reaction["reaction"]
        return self.inbound.message(
            f"reaction:{_digest(item)}",
            item["sender"]["id"],
            from_millis(item["timestamp"]),
            item,
            kind=MessageKind.REACTION,
            reaction={"message_id": reaction["mid"], "emoji": emoji},
        )

    def _read(self, item: dict[str, Any], read: dict[str, Any]) -> Event:
        sender = item["sender"]["id"]
        if "mid" in read:  # Instagram names the message seen
            message_id, event_id = read["mid"], f"{read['mid']}:read"
        else:  # Messenger: everything sent at or before the watermark was read
            watermark = int(read["watermark"])
            message_id, event_id = f"watermark:{watermark}", f"read:{sender}:{watermark}"
        return self._status(item, event_id, message_id, DeliveryState.READ)

    def _deliveries(self, item: dict[str, Any], delivery: dict[str, Any]) -> list[Event]:
        watermark = int(delivery["watermark"])
        mids = delivery.get("mids") or []  # "sometimes present"
        if not isinstance(mids, list):
            raise TypeError("delivery.mids must be a list")
        if not mids:
            sender = item["sender"]["id"]
            return [
                self._status(
                    item, f"delivered:{sender}:{watermark}", f"watermark:{watermark}", _DELIVERED
                )
            ]
        return [self._status(item, f"{mid}:delivered", mid, _DELIVERED) for mid in mids]

    def _status(
        self, item: dict[str, Any], event_id: str, message_id: Any, state: DeliveryState
    ) -> Event:
        # A delivery carries no timestamp of its own: its watermark is the latest time.
        when = item.get("timestamp") or item.get("delivery", {}).get("watermark")
        return StatusUpdate.model_validate(
            {
                "channel": self.inbound.channel,
                "event_id": event_id,
                "contact": self.inbound.identity(item["sender"]["id"]),
                "timestamp": from_millis(when),
                "message_id": message_id,
                "state": state,
                "raw": item,
            }
        )

    def _channel_event(
        self, name: str, event_id: str, item: dict[str, Any], party: str, data: dict[str, Any]
    ) -> Event:
        return ChannelEvent.model_validate(
            {
                "channel": self.inbound.channel,
                "event_id": event_id,
                "contact": {"channel": self.inbound.channel, "address": item[party]["id"]},
                "timestamp": from_millis(item["timestamp"]),
                "name": name,
                "data": data,
                "opens_window": False,
                "raw": item,
            }
        )


_DELIVERED = DeliveryState.DELIVERED


def _content(message: dict[str, Any]) -> dict[str, Any]:
    """The common-model fields of a customer message (the model validates them)."""
    text = message.get("text")
    attachments = message.get("attachments") or []
    media = [
        {"kind": MEDIA_TYPES[a["type"]], "url": (a.get("payload") or {}).get("url")}
        for a in attachments
        if a["type"] in MEDIA_TYPES
    ]
    quick_reply = message.get("quick_reply")
    if quick_reply is not None:
        reply = {"id": quick_reply["payload"], "title": text}
        return {"kind": MessageKind.INTERACTIVE_REPLY, "text": text, "interactive_reply": reply}
    if message.get("is_unsupported") or (text is None and not media):
        return {"kind": MessageKind.UNSUPPORTED, "text": text}
    if media:
        return {"kind": MessageKind.MEDIA, "text": text, "media": media}
    return {"kind": MessageKind.TEXT, "text": text}


def _reply_to(reply: Any) -> str | None:
    """The quoted message's mid, or ``story:<id>`` for a reply to an Instagram story."""
    if reply is None:
        return None
    if "story" in reply:
        return f"story:{reply['story']['id']}"
    mid: str = reply["mid"]
    return mid


def _digest(item: dict[str, Any]) -> str:
    """A stable id for an event the provider gives no id (redeliveries deduplicate)."""
    return digest_id(json.dumps(item, sort_keys=True, default=str))
