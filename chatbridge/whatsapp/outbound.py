"""chatbridge messages -> WhatsApp Cloud API ``/messages`` request bodies, with the
documented limits checked first."""

from __future__ import annotations

from typing import Any

from chatbridge.errors import MessageInvalidError, UnsupportedMessageError
from chatbridge.models import Interactive, Media, MediaKind, Message, MessageKind, Template
from chatbridge.plugin.lengths import Lengths

#: Largest upload per media type, in bytes (Cloud API "Supported media types").
MEDIA_MAX_BYTES = {
    "image": 5 * 1024 * 1024,
    "audio": 16 * 1024 * 1024,
    "video": 16 * 1024 * 1024,
    "document": 100 * 1024 * 1024,
    "sticker": 500 * 1024,
}
_WIRE_MEDIA_TYPE = {
    MediaKind.IMAGE: "image",
    MediaKind.AUDIO: "audio",
    MediaKind.VOICE: "audio",
    MediaKind.VIDEO: "video",
    MediaKind.DOCUMENT: "document",
    MediaKind.FILE: "document",
    MediaKind.STICKER: "sticker",
}


def wire_media_type(media: Media) -> str:
    """The Cloud API media type (image, audio, ...) for ``media``."""
    return _WIRE_MEDIA_TYPE[media.kind]


def is_voice_note(mime_type: str | None) -> bool:
    """Whether WhatsApp takes media of ``mime_type`` as a voice note: ``audio/ogg`` with
    the OPUS codec (a ``codecs`` parameter, if given, is ``opus``). An unknown type (media
    by id or link) is taken at its word: Meta checks the file."""
    if mime_type is None:
        return True
    kind, *parameters = (part.strip().lower() for part in mime_type.split(";"))
    codecs = [p.partition("=")[2].strip('"') for p in parameters if p.startswith("codecs=")]
    return kind == "audio/ogg" and all(codec == "opus" for codec in codecs)


def validate(message: Message, lengths: Lengths) -> None:
    """Raise MessageInvalidError if ``message`` breaks a Cloud API limit."""
    lengths.text("a text body", message.text, 4096)
    match message.kind:
        case MessageKind.MEDIA:
            lengths.count("media items per message", message.media, 1, 1)
            media = message.media[0]
            lengths.text("a media caption", media.caption, 1024)
            if not (media.provider_id or media.url or media.data):
                raise MessageInvalidError("media needs a provider_id, a url or data to upload")
            link = None if media.provider_id else media.url
            if link and not link.lower().startswith(("http://", "https://")):
                raise MessageInvalidError("WhatsApp fetches media links over http or https only")
            if media.kind is MediaKind.VOICE and not is_voice_note(media.mime_type):
                raise MessageInvalidError(
                    f"a WhatsApp voice note is OGG/OPUS audio (audio/ogg), not {media.mime_type}: "
                    "send it as MediaKind.AUDIO"
                )
        case MessageKind.INTERACTIVE:
            assert message.interactive is not None
            _validate_interactive(message.interactive, lengths)
        case MessageKind.TEMPLATE:
            assert message.template is not None
            if not message.template.language:
                raise MessageInvalidError("a WhatsApp template needs a language code")
        case MessageKind.TEXT:
            if not message.text:
                raise MessageInvalidError("a text message needs a non-empty text")
        case MessageKind.LOCATION | MessageKind.REACTION:
            pass
        case _:
            raise UnsupportedMessageError(f"WhatsApp cannot send a {message.kind} message")


def _validate_interactive(interactive: Interactive, lengths: Lengths) -> None:
    lengths.text("an interactive body", interactive.body, 1024)
    lengths.text("an interactive header", interactive.header, 60)
    lengths.text("an interactive footer", interactive.footer, 60)
    if interactive.buttons:
        lengths.count("reply buttons", interactive.buttons, 3, 1)
        for button in interactive.buttons:
            lengths.text("a button title", button.title, 20)
            lengths.text("a button id", button.id, 256)
        return
    lengths.count("list sections", interactive.sections, 10, 1)
    rows = [row for section in interactive.sections for row in section.rows]
    lengths.count("list rows in all", rows, 10, 1)
    if not interactive.button_label:
        raise MessageInvalidError("a WhatsApp list needs a button_label")
    lengths.text("a list button label", interactive.button_label, 20)
    for section in interactive.sections:
        lengths.text("a section title", section.title, 24)
    for row in rows:
        lengths.text("a row title", row.title, 24)
        lengths.text("a row description", row.description, 72)
        lengths.text("a row id", row.id, 200)


def message_body(message: Message) -> dict[str, Any]:
    """The JSON body of ``POST /{phone-number-id}/messages`` for a validated message.

    Media must already carry a provider id or a link (the channel uploads bytes first).
    """
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.contact.address,
    }
    if message.reply_to:
        body["context"] = {"message_id": message.reply_to}
    kind, content = _content(message)
    body["type"] = kind
    body[kind] = content
    return body


def _content(message: Message) -> tuple[str, dict[str, Any]]:
    if message.template:
        return "template", _template(message.template)
    if message.interactive:
        return "interactive", _interactive(message.interactive)
    if message.reaction:
        return "reaction", {
            "message_id": message.reaction.message_id,
            "emoji": message.reaction.emoji,
        }
    if message.location:
        return "location", message.location.model_dump(exclude_none=True, exclude={"url"})
    if message.media:
        return _media(message.media[0])
    return "text", {"body": message.text, "preview_url": False}


def _media(media: Media) -> tuple[str, dict[str, Any]]:
    kind = wire_media_type(media)
    content: dict[str, Any] = (
        {"id": media.provider_id} if media.provider_id else {"link": media.url}
    )
    if media.kind is MediaKind.VOICE and is_voice_note(media.mime_type):
        content["voice"] = True
    if media.caption and kind in ("image", "video", "document"):
        content["caption"] = media.caption
    if media.filename and kind == "document":
        content["filename"] = media.filename
    return kind, content


def _template(template: Template) -> dict[str, Any]:
    components = template.components
    if components is None:
        parameters = [{"type": "text", "text": value} for value in template.parameters]
        parameters += [
            {"type": "text", "parameter_name": name, "text": value}
            for name, value in template.named_parameters.items()
        ]
        components = [{"type": "body", "parameters": parameters}] if parameters else []
    content: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if components:
        content["components"] = components
    return content


def _interactive(interactive: Interactive) -> dict[str, Any]:
    content: dict[str, Any] = {"body": {"text": interactive.body}}
    if interactive.header:
        content["header"] = {"type": "text", "text": interactive.header}
    if interactive.footer:
        content["footer"] = {"text": interactive.footer}
    if interactive.buttons:
        content["type"] = "button"
        content["action"] = {
            "buttons": [
                {"type": "reply", "reply": {"id": b.id, "title": b.title}}
                for b in interactive.buttons
            ]
        }
        return content
    content["type"] = "list"
    content["action"] = {
        "button": interactive.button_label,
        "sections": [
            {
                **({"title": section.title} if section.title else {}),
                "rows": [row.model_dump(exclude_none=True) for row in section.rows],
            }
            for section in interactive.sections
        ],
    }
    return content


def mark_read_body(message_id: str) -> dict[str, Any]:
    """The body that marks an inbound message as read (blue ticks)."""
    return {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}


def typing_body(message_id: str) -> dict[str, Any]:
    """The body that marks ``message_id`` read and shows the typing indicator."""
    return {**mark_read_body(message_id), "typing_indicator": {"type": "text"}}
