"""chatbridge messages -> LINE message objects ("Message objects" reference), with the
documented limits checked first."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from chatbridge.errors import MessageInvalidError, UnsupportedMessageError
from chatbridge.models import Interactive, Media, MediaKind, Message, MessageKind
from chatbridge.plugin.lengths import Lengths

MAX_MESSAGES_PER_REQUEST = 5
MAX_MULTICAST_RECIPIENTS = 500
#: Push and multicast idempotency ("Retry failed API requests"): a UUID that LINE
#: remembers for 24 hours; a repeat of an accepted key is answered 409.
RETRY_KEY_HEADER = "X-Line-Retry-Key"
RETRY_KEY_TTL = timedelta(hours=24)
ACCEPTED_REQUEST_ID_HEADER = "x-line-accepted-request-id"


def retry_key(key: str | None) -> str:
    """``key`` once checked to be the UUID LINE requires, or a new one."""
    if key is None:
        return str(uuid.uuid4())
    try:
        uuid.UUID(key)
    except ValueError:
        raise MessageInvalidError(f"a LINE retry key is a UUID, not {key!r}") from None
    return key


def chunk_key(key: str, to: Sequence[str]) -> str:
    """The retry key of a multicast's request to the user ids ``to``: derived from the
    multicast's key and those ids, so a retry repeats the key of a request it repeats
    exactly, and a request whose recipients changed (someone left in between) is a new
    one rather than taken by LINE for the one it already accepted."""
    return str(uuid.uuid5(uuid.UUID(key), "\n".join(to)))


def validate(message: Message, lengths: Lengths) -> None:
    """Raise MessageInvalidError if ``message`` cannot be a LINE message object."""
    match message.kind:
        case MessageKind.TEXT:
            if not message.text:
                raise MessageInvalidError("a text message needs a non-empty text")
            lengths.text("a text message", message.text, 5000)
        case MessageKind.MEDIA:
            lengths.count("media items per message", message.media, 1, 1)
            _validate_media(message.media[0])
        case MessageKind.LOCATION:
            assert message.location is not None
            lengths.text("a location title", message.location.name, 100)
            lengths.text("a location address", message.location.address, 100)
        case MessageKind.INTERACTIVE:
            assert message.interactive is not None
            _validate_interactive(message.interactive, lengths)
        case MessageKind.CARD:
            assert message.card is not None
            lengths.text("a card title", message.card.title, 40)
            lengths.text("a card description", message.card.description, 60)
        case MessageKind.TEMPLATE:
            raise UnsupportedMessageError(
                "LINE has no pre-approved templates: send text or an interactive message"
            )
        case _:
            raise UnsupportedMessageError(f"LINE cannot send a {message.kind} message")


def _validate_media(media: Media) -> None:
    if media.kind not in (MediaKind.IMAGE, MediaKind.VIDEO, MediaKind.AUDIO):
        raise UnsupportedMessageError(f"LINE cannot send {media.kind} media")
    if not (media.url and media.url.startswith("https://")):
        raise MessageInvalidError(
            "LINE sends media by https URL only (it has no upload API); set media.url"
        )
    if media.kind is MediaKind.VIDEO and not media.preview_url:
        raise MessageInvalidError("a LINE video needs a preview_url (an https image)")
    if media.kind is MediaKind.AUDIO and not media.duration_ms:
        raise MessageInvalidError("a LINE audio message needs duration_ms")


def _validate_interactive(interactive: Interactive, lengths: Lengths) -> None:
    if interactive.buttons:
        lengths.count("template buttons", interactive.buttons, 4, 1)
        limit = 60 if interactive.header else 160
        lengths.text("a buttons template text", interactive.body, limit)
        lengths.text("a buttons template title", interactive.header, 40)
        labels = [(b.title, b.id) for b in interactive.buttons]
    else:
        rows = [row for section in interactive.sections for row in section.rows]
        lengths.count("quick reply items", rows, 13, 1)
        lengths.text("a text message", interactive.body, 5000)
        labels = [(row.title, row.id) for row in rows]
    for label, data in labels:
        lengths.text("an action label", label, 20)
        lengths.text("postback data", data, 300)


def message_object(message: Message) -> dict[str, Any]:
    """The LINE message object for a validated message."""
    if message.interactive:
        return _interactive(message.interactive)
    if message.card:
        card = message.card
        template: dict[str, Any] = {
            "type": "buttons",
            "title": card.title,
            "text": card.description or card.title,
            "actions": [{"type": "uri", "label": "Open", "uri": card.url}],
        }
        if card.image_url:
            template["thumbnailImageUrl"] = card.image_url
        return {"type": "template", "altText": card.title, "template": template}
    if message.location:
        loc = message.location
        return {
            "type": "location",
            "title": loc.name or "Location",
            "address": loc.address or "",
            "latitude": loc.latitude,
            "longitude": loc.longitude,
        }
    if message.media:
        return _media(message.media[0])
    return {"type": "text", "text": message.text}


def _media(media: Media) -> dict[str, Any]:
    if media.kind is MediaKind.AUDIO:
        return {"type": "audio", "originalContentUrl": media.url, "duration": media.duration_ms}
    preview = media.preview_url or media.url
    kind = "video" if media.kind is MediaKind.VIDEO else "image"
    return {"type": kind, "originalContentUrl": media.url, "previewImageUrl": preview}


def _postback(label: str, data: str) -> dict[str, Any]:
    return {"type": "postback", "label": label, "data": data, "displayText": label}


def _interactive(interactive: Interactive) -> dict[str, Any]:
    if interactive.buttons:
        template: dict[str, Any] = {
            "type": "buttons",
            "text": interactive.body,
            "actions": [_postback(b.title, b.id) for b in interactive.buttons],
        }
        if interactive.header:
            template["title"] = interactive.header
        return {"type": "template", "altText": interactive.body[:400], "template": template}
    rows = [row for section in interactive.sections for row in section.rows]
    items = [{"type": "action", "action": _postback(row.title, row.id)} for row in rows]
    return {"type": "text", "text": interactive.body, "quickReply": {"items": items}}
