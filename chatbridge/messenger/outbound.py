"""chatbridge messages -> Send API (``POST /{page-id}/messages``) request bodies, with
the documented limits checked first. Sources: docs/messenger.md, docs/instagram.md.

Which common-model content becomes what on the wire:

- ``text`` -> ``message.text``;
- one ``media`` item -> ``message.attachment`` (by ``url``, or by the id an upload gave);
- ``interactive.buttons`` -> quick replies under ``interactive.body``;
- ``interactive.sections`` (one section of 1-3 rows) -> a button template of postback
  buttons;
- ``card`` -> a generic template with one element;
- ``reaction`` -> the ``react`` / ``unreact`` sender action;
- ``tag`` -> the message tag the content is sent with (``PolicyRules.tags``).

Typing and seen indicators are sender actions too, sent on their own
(:func:`sender_action_body`), not messages.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from chatbridge.errors import MessageInvalidError, UnsupportedMessageError
from chatbridge.models import Card, Interactive, Media, MediaKind, Message
from chatbridge.plugin import Lengths

QUICK_REPLIES_MAX = 13
QUICK_REPLY_TITLE_MAX = 20
BUTTON_TEMPLATE_TEXT_MAX = 640
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
POSTBACK_PAYLOAD_MAX = 1000
ELEMENT_TITLE_MAX = 80
ELEMENT_SUBTITLE_MAX = 80

_WIRE_MEDIA_TYPE = {
    MediaKind.IMAGE: "image",
    MediaKind.VIDEO: "video",
    MediaKind.AUDIO: "audio",
    MediaKind.VOICE: "audio",
    MediaKind.FILE: "file",
    MediaKind.DOCUMENT: "file",
}

#: How a message names an uploaded attachment: Messenger's ``payload.attachment_id``,
#: or Instagram's ``MEDIA_SHARE`` attachment with ``payload.id``.
SavedAttachment = Literal["attachment_id", "media_share"]
Part = Literal["reaction", "card", "interactive", "media", "text"]
#: The typing and seen sender actions (``react`` / ``unreact`` go with a Message).
SenderAction = Literal["typing_on", "typing_off", "mark_seen"]


@dataclass(frozen=True)
class TextLimit:
    """The longest text a message may carry, in characters or in UTF-8 bytes."""

    maximum: int
    unit: Literal["characters", "bytes"] = "characters"

    def check(self, lengths: Lengths, what: str, value: str | None) -> None:
        check = lengths.utf8 if self.unit == "bytes" else lengths.text
        check(what, value, self.maximum)


def wire_media_type(media: Media) -> str:
    """The attachment type (image, video, audio, file) for ``media``."""
    wire = _WIRE_MEDIA_TYPE.get(media.kind)
    if wire is None:
        raise UnsupportedMessageError(f"cannot send {media.kind} media as an attachment")
    return wire


def part(message: Message) -> Part:
    """What ``message`` puts on the wire; refuses content that cannot go together."""
    present: tuple[tuple[Part, object], ...] = (
        ("reaction", message.reaction),
        ("card", message.card),
        ("interactive", message.interactive),
        ("media", message.media),
    )
    parts = [name for name, content in present if content]
    if message.location is not None:
        raise UnsupportedMessageError("cannot send a location")
    if message.template is not None:
        raise UnsupportedMessageError(
            "the Messenger Platform has no templates here: send with a message tag (Message.tag)"
        )
    if message.reply_to:
        raise UnsupportedMessageError("cannot quote a message (reply_to)")
    if len(parts) > 1:
        raise MessageInvalidError(f"send {' and '.join(parts)} as separate messages")
    if not parts:
        if not message.text:
            raise MessageInvalidError("a message needs text, media, buttons or a card")
        return "text"
    if message.text:
        raise MessageInvalidError(f"send the text and the {parts[0]} as separate messages")
    return parts[0]


def validate(
    message: Message,
    lengths: Lengths,
    text_limit: TextLimit,
    tags: Collection[str],
    upload_max_bytes: Mapping[str, int],
) -> None:
    """Raise MessageInvalidError if ``message`` breaks a documented limit."""
    kind = part(message)
    _validate_tag(message, lengths.channel, tags, kind)
    match kind:
        case "text":
            text_limit.check(lengths, "a text message", message.text)
        case "media":
            lengths.count("media items per message", message.media, 1, 1)
            _validate_media(message.media[0], lengths, upload_max_bytes)
        case "interactive":
            assert message.interactive is not None
            _validate_interactive(message.interactive, lengths, text_limit)
        case "card":
            assert message.card is not None
            lengths.text("a generic template title", message.card.title, ELEMENT_TITLE_MAX)
            lengths.text(
                "a generic template subtitle", message.card.description, ELEMENT_SUBTITLE_MAX
            )


def _validate_tag(message: Message, channel: str, tags: Collection[str], kind: Part) -> None:
    if message.tag is None:
        return
    if message.tag not in tags:
        known = ", ".join(tags)
        raise MessageInvalidError(f"{message.tag!r} is not a message tag of {channel} ({known})")
    if kind == "reaction":
        raise MessageInvalidError("a reaction is a sender action and takes no message tag")


def _validate_media(media: Media, lengths: Lengths, upload_max_bytes: Mapping[str, int]) -> None:
    wire = wire_media_type(media)
    if media.caption:
        raise MessageInvalidError("attachments have no caption: send the text on its own")
    if not (media.provider_id or media.url or media.data):
        raise MessageInvalidError("media needs a provider_id, a url or data to upload")
    if media.data is not None:
        lengths.upload(wire, media.data, upload_max_bytes[wire])


def _validate_interactive(
    interactive: Interactive, lengths: Lengths, text_limit: TextLimit
) -> None:
    if interactive.header or interactive.footer:
        raise UnsupportedMessageError("quick replies and button templates have no header or footer")
    if interactive.buttons:
        text_limit.check(lengths, "a quick replies text", interactive.body)
        lengths.count("quick replies", interactive.buttons, QUICK_REPLIES_MAX, 1)
        for button in interactive.buttons:
            lengths.text("a quick reply title", button.title, QUICK_REPLY_TITLE_MAX)
        return
    lengths.count("sections in a button template", interactive.sections, 1, 1)
    rows = interactive.sections[0].rows
    lengths.count("buttons in a button template", rows, BUTTONS_MAX, 1)
    lengths.text("a button template text", interactive.body, BUTTON_TEMPLATE_TEXT_MAX)
    for row in rows:
        if row.description:
            raise UnsupportedMessageError("button template buttons have no description")
        lengths.text("a button title", row.title, BUTTON_TITLE_MAX)
        lengths.text("a postback payload", row.id, POSTBACK_PAYLOAD_MAX)


def message_body(message: Message, saved: SavedAttachment) -> dict[str, Any]:
    """The JSON body of ``POST /{page-id}/messages`` for a validated message (without
    the access token). Media must carry a url or the id of an upload."""
    body: dict[str, Any] = {"recipient": {"id": message.contact.address}}
    kind = part(message)
    if kind == "reaction":
        assert message.reaction is not None
        emoji, mid = message.reaction.emoji, message.reaction.message_id
        body["sender_action"] = "react" if emoji else "unreact"
        body["payload"] = {"message_id": mid, **({"reaction": emoji} if emoji else {})}
        return body
    tag = message.tag
    body["messaging_type"] = "MESSAGE_TAG" if tag else "RESPONSE"
    if tag:
        body["tag"] = tag
    body["message"] = _content(message, kind, saved)
    return body


def _content(message: Message, kind: Part, saved: SavedAttachment) -> dict[str, Any]:
    if kind == "media":
        return {"attachment": _attachment(message.media[0], saved)}
    if kind == "card":
        assert message.card is not None
        return {"attachment": _generic_template(message.card)}
    if kind == "interactive":
        assert message.interactive is not None
        return _interactive(message.interactive)
    return {"text": message.text}


def _attachment(media: Media, saved: SavedAttachment) -> dict[str, Any]:
    wire = wire_media_type(media)
    if media.provider_id is None:
        return {"type": wire, "payload": {"url": media.url}}
    if saved == "media_share":
        return {"type": "MEDIA_SHARE", "payload": {"id": media.provider_id}}
    return {"type": wire, "payload": {"attachment_id": media.provider_id}}


def _generic_template(card: Card) -> dict[str, Any]:
    element: dict[str, Any] = {
        "title": card.title,
        "default_action": {"type": "web_url", "url": card.url},
    }
    if card.description:
        element["subtitle"] = card.description
    if card.image_url:
        element["image_url"] = card.image_url
    return {"type": "template", "payload": {"template_type": "generic", "elements": [element]}}


def _interactive(interactive: Interactive) -> dict[str, Any]:
    if interactive.buttons:
        quick_replies = [
            {"content_type": "text", "title": b.title, "payload": b.id} for b in interactive.buttons
        ]
        return {"text": interactive.body, "quick_replies": quick_replies}
    buttons = [
        {"type": "postback", "title": row.title, "payload": row.id}
        for row in interactive.sections[0].rows
    ]
    payload = {"template_type": "button", "text": interactive.body, "buttons": buttons}
    return {"attachment": {"type": "template", "payload": payload}}


def sender_action_body(address: str, action: SenderAction) -> dict[str, Any]:
    """The JSON body of a typing or seen sender action (without the access token): only
    ``recipient`` and ``sender_action``, which "Cannot be sent with the message
    parameter"."""
    return {"recipient": {"id": address}, "sender_action": action}
