"""chatbridge messages -> WeChat customer-service and template message bodies."""

from __future__ import annotations

from typing import Any

from chatbridge.errors import MessageInvalidError, UnsupportedMessageError
from chatbridge.models import Media, MediaKind, Message, MessageKind
from chatbridge.plugin.lengths import Lengths

#: Temporary media upload types and their size limits ("Media > Temporary materials").
MEDIA_TYPES = {
    MediaKind.IMAGE: "image",
    MediaKind.VOICE: "voice",
    MediaKind.AUDIO: "voice",
    MediaKind.VIDEO: "video",
}
MEDIA_MAX_BYTES = {"image": 10 * 1024 * 1024, "voice": 2 * 1024 * 1024, "video": 10 * 1024 * 1024}


def media_type(media: Media) -> str:
    """The WeChat upload type of ``media``; UnsupportedMessageError if it has none."""
    try:
        return MEDIA_TYPES[media.kind]
    except KeyError:
        raise UnsupportedMessageError(f"WeChat cannot send {media.kind} media") from None


def validate(message: Message, lengths: Lengths) -> None:
    """Raise MessageInvalidError if ``message`` cannot be sent as a WeChat message."""
    match message.kind:
        case MessageKind.TEXT:
            if not message.text:
                raise MessageInvalidError("a text message needs a non-empty text")
        case MessageKind.MEDIA:
            lengths.count("media items per message", message.media, 1, 1)
            media = message.media[0]
            media_type(media)
            if not (media.provider_id or media.data):
                raise MessageInvalidError("WeChat media needs a media_id (provider_id) or data")
        case MessageKind.CARD:
            assert message.card is not None
            lengths.text("a card title", message.card.title, 64)
        case MessageKind.TEMPLATE:
            assert message.template is not None
            if message.template.parameters:
                raise MessageInvalidError(
                    "WeChat template data fields are named: use named_parameters"
                )
        case _:
            raise UnsupportedMessageError(f"WeChat cannot send a {message.kind} message")


def customer_service_body(message: Message) -> dict[str, Any]:
    """The body of ``/cgi-bin/message/custom/send`` (media already uploaded)."""
    body: dict[str, Any] = {"touser": message.contact.address}
    if message.card:
        card = message.card
        article = {"title": card.title, "description": card.description, "url": card.url}
        if card.image_url:
            article["picurl"] = card.image_url
        body.update(msgtype="news", news={"articles": [article]})
    elif message.media:
        media = message.media[0]
        kind = media_type(media)
        content: dict[str, Any] = {"media_id": media.provider_id}
        if kind == "video" and media.caption:
            content["title"] = media.caption
        body.update({"msgtype": kind, kind: content})
    else:
        body.update(msgtype="text", text={"content": message.text})
    return body


def template_body(message: Message, client_msg_id: str) -> dict[str, Any]:
    """The body of ``/cgi-bin/message/template/send``: ``Template.name`` is the
    template_id and ``named_parameters`` fill its data fields; WeChat sends one message
    per openid and ``client_msg_id`` (within 10 minutes)."""
    assert message.template is not None
    return {
        "touser": message.contact.address,
        "template_id": message.template.name,
        "client_msg_id": client_msg_id,
        "data": {key: {"value": value} for key, value in message.template.named_parameters.items()},
    }
