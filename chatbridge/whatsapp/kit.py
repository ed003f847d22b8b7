"""The WhatsApp conformance kit: test credentials, signing, sample webhooks, fake API.

Sample payloads follow the shapes of Meta's "Webhooks > messages" reference.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from chatbridge.clock import FAKE_EPOCH
from chatbridge.messenger.kit import meta_handshake, meta_signed
from chatbridge.models import (
    DeliveryState,
    Event,
    Identity,
    Media,
    MediaKind,
    Message,
    MessageKind,
    MessageReceived,
    StatusUpdate,
    Template,
    TemplateUpdate,
    UnknownEvent,
)
from chatbridge.plugin.kit import ChannelKit, Facts, Sample
from chatbridge.webhook import WebhookRequest
from chatbridge.whatsapp.channel import WhatsAppChannel, WhatsAppConfig
from chatbridge.whatsapp.fake import FakeWhatsAppAPI
from chatbridge.whatsapp.fake_account import template_notification

WABA_ID = "102290129340398"
CONFIG = WhatsAppConfig(
    phone_number_id="106540352242922",
    business_account_id=WABA_ID,
    access_token="EAAG-test-access-token",
    app_secret="whatsapp-test-app-secret",
    verify_token="whatsapp-test-verify-token",
)
CUSTOMER = "16505551234"
WEBHOOK_URL = "https://support.example.com/webhooks/whatsapp"
_T0 = int(FAKE_EPOCH.timestamp())


def notification(*values: dict[str, Any], field: str = "messages") -> bytes:
    """A webhook body with one change per value, under one entry."""
    changes = [{"field": field, "value": value} for value in values]
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": changes}],
        }
    ).encode()


def _value(**content: Any) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": "15550783881",
            "phone_number_id": CONFIG.phone_number_id,
        },
        **content,
    }


def inbound(
    kind: str, content: Any, *, sender: str = CUSTOMER, at: int = _T0, **extra: Any
) -> bytes:
    """A notification carrying one customer message of type ``kind``."""
    message = {
        "from": sender,
        "id": f"wamid.{kind}.{at}.{sender}",
        "timestamp": str(at),
        "type": kind,
    }
    message.update({kind: content} if content is not None else {}, **extra)
    # user_id: the business-scoped user id Meta adds to contacts since April 2026.
    contacts = [{"profile": {"name": "Sheena Nelson"}, "wa_id": sender, "user_id": f"US.{sender}"}]
    return notification(_value(contacts=contacts, messages=[message]))


def status(state: str, message_id: str = "wamid.OUT1", **extra: Any) -> bytes:
    item = {
        "id": message_id,
        "status": state,
        "timestamp": str(_T0),
        "recipient_id": CUSTOMER,
        **extra,
    }
    return notification(_value(statuses=[item]))


def failed_later(message_id: str, address: str) -> bytes:
    """A ``failed`` status with Meta's error object (131026: the number is not on
    WhatsApp, or its app is too old)."""
    error = {
        "code": 131026,
        "title": "Message undeliverable",
        "message": "Message undeliverable",
        "error_data": {"details": "Message Undeliverable."},
        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
    }
    return status("failed", message_id, recipient_id=address, errors=[error])


_TEMPLATE = {"id": "1689556908129832", "name": "order_update", "language": "en_US"}


def template_status(event: str = "APPROVED", reason: str = "NONE") -> bytes:
    """A ``message_template_status_update`` notification (Meta's webhook reference)."""
    return template_notification(
        WABA_ID,
        _TEMPLATE,
        "message_template_status_update",
        event=event,
        reason=reason,
        message_template_category="UTILITY",
    )


def template_quality(new: str = "YELLOW", previous: str = "GREEN") -> bytes:
    """A ``message_template_quality_update`` notification."""
    return template_notification(
        WABA_ID,
        _TEMPLATE,
        "message_template_quality_update",
        previous_quality_score=previous,
        new_quality_score=new,
    )


def template_category(new: str = "MARKETING", previous: str = "UTILITY") -> bytes:
    """A completed ``template_category_update`` notification."""
    return template_notification(
        WABA_ID,
        _TEMPLATE,
        "template_category_update",
        previous_category=previous,
        new_category=new,
    )


def _template_update(**expected: str) -> Callable[[list[Event]], None]:
    def assert_update(events: list[Event]) -> None:
        event = events[0]
        assert isinstance(event, TemplateUpdate) and event.contact is None
        assert event.template_id == _TEMPLATE["id"] and event.name == "order_update"
        for name, value in expected.items():
            assert getattr(event, name) == value, (name, event)

    return assert_update


def _media(data: dict[str, Any]) -> dict[str, Any]:
    return {"id": "1037543291543636", "mime_type": "image/jpeg", "sha256": "abc", **data}


def _message(check: Callable[[Message], bool]) -> Callable[[list[Event]], None]:
    def assert_message(events: list[Event]) -> None:
        event = events[0]
        assert isinstance(event, MessageReceived)
        assert event.contact == Identity(channel="whatsapp", address=CUSTOMER)
        assert event.contact_name == "Sheena Nelson"
        assert check(event.message), event.message

    return assert_message


def _status(state: DeliveryState, errors: int = 0) -> Callable[[list[Event]], None]:
    def assert_status(events: list[Event]) -> None:
        event = events[0]
        assert isinstance(event, StatusUpdate)
        assert event.state is state and event.message_id == "wamid.OUT1"
        assert len(event.errors) == errors

    return assert_status


_MSG = (MessageReceived,)
SAMPLES = [
    Sample(
        "text",
        inbound("text", {"body": "Does it come in red?"}),
        _MSG,
        _message(lambda m: m.text == "Does it come in red?" and m.kind is MessageKind.TEXT),
    ),
    Sample(
        "image",
        inbound("image", _media({"caption": "this one"})),
        _MSG,
        _message(lambda m: m.media[0].kind is MediaKind.IMAGE and m.media[0].caption == "this one"),
    ),
    Sample(
        "audio",
        inbound("audio", _media({"mime_type": "audio/ogg"})),
        _MSG,
        _message(lambda m: m.media[0].kind is MediaKind.AUDIO),
    ),
    Sample(
        "voice",
        inbound("audio", _media({"mime_type": "audio/ogg", "voice": True})),
        _MSG,
        _message(lambda m: m.media[0].kind is MediaKind.VOICE),
    ),
    Sample(
        "video",
        inbound("video", _media({"mime_type": "video/mp4"})),
        _MSG,
        _message(lambda m: m.media[0].kind is MediaKind.VIDEO),
    ),
    Sample(
        "document",
        inbound("document", _media({"filename": "invoice.pdf"})),
        _MSG,
        _message(lambda m: m.media[0].filename == "invoice.pdf"),
    ),
    Sample(
        "sticker",
        inbound("sticker", _media({"mime_type": "image/webp", "animated": False})),
        _MSG,
        _message(lambda m: m.media[0].kind is MediaKind.STICKER),
    ),
    Sample(
        "location",
        inbound("location", {"latitude": 52.37, "longitude": 4.89, "name": "Dam"}),
        _MSG,
        _message(lambda m: m.location is not None and m.location.name == "Dam"),
    ),
    Sample(
        "contacts",
        inbound("contacts", [{"name": {"formatted_name": "Ann"}}]),
        _MSG,
        _message(lambda m: m.kind is MessageKind.CONTACTS and "contacts" in m.raw),
    ),
    Sample(
        "button_reply",
        inbound(
            "interactive", {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}
        ),
        _MSG,
        _message(lambda m: m.interactive_reply is not None and m.interactive_reply.id == "yes"),
    ),
    Sample(
        "list_reply",
        inbound(
            "interactive",
            {
                "type": "list_reply",
                "list_reply": {"id": "r2", "title": "Red", "description": "size M"},
            },
        ),
        _MSG,
        _message(
            lambda m: (
                m.interactive_reply is not None and m.interactive_reply.description == "size M"
            )
        ),
    ),
    Sample(
        "template_button",
        inbound("button", {"payload": "STOP_PROMOS", "text": "Stop"}),
        _MSG,
        _message(
            lambda m: m.interactive_reply is not None and m.interactive_reply.id == "STOP_PROMOS"
        ),
    ),
    Sample(
        "reaction",
        inbound("reaction", {"message_id": "wamid.OUT1", "emoji": "\U0001f44d"}),
        _MSG,
        _message(lambda m: m.reaction is not None and m.reaction.message_id == "wamid.OUT1"),
    ),
    Sample(
        "order",
        inbound(
            "order",
            {
                "catalog_id": "c1",
                "text": "asap",
                "product_items": [{"product_retailer_id": "sku1", "quantity": 2}],
            },
        ),
        _MSG,
        _message(lambda m: m.kind is MessageKind.ORDER and m.text == "asap"),
    ),
    Sample(
        "system",
        inbound("system", {"body": "User changed number", "type": "user_changed_number"}),
        _MSG,
        _message(lambda m: m.kind is MessageKind.SYSTEM),
    ),
    Sample(
        "unsupported",
        inbound("unsupported", None, errors=[{"code": 131051, "title": "Message type unknown"}]),
        _MSG,
        _message(lambda m: m.kind is MessageKind.UNSUPPORTED and "errors" in m.raw),
    ),
    Sample(
        "reply_context",
        inbound("text", {"body": "re"}, context={"from": "155", "id": "wamid.Q"}),
        _MSG,
        _message(lambda m: m.reply_to == "wamid.Q"),
    ),
    Sample("status_sent", status("sent"), (StatusUpdate,), _status(DeliveryState.SENT)),
    Sample(
        "status_delivered", status("delivered"), (StatusUpdate,), _status(DeliveryState.DELIVERED)
    ),
    Sample("status_read", status("read"), (StatusUpdate,), _status(DeliveryState.READ)),
    Sample("status_played", status("played"), (StatusUpdate,), _status(DeliveryState.PLAYED)),
    Sample(
        "status_failed",
        status(
            "failed",
            errors=[
                {
                    "code": 131047,
                    "title": "Re-engagement message",
                    "error_data": {"details": "more than 24 hours"},
                }
            ],
        ),
        (StatusUpdate,),
        _status(DeliveryState.FAILED, errors=1),
    ),
    Sample(
        "batch",
        notification(
            _value(
                messages=[
                    {
                        "from": "1",
                        "id": "wamid.B1",
                        "timestamp": str(_T0),
                        "type": "text",
                        "text": {"body": "a"},
                    }
                ]
            ),
            _value(
                statuses=[
                    {"id": "wamid.B2", "status": "read", "timestamp": str(_T0), "recipient_id": "2"}
                ]
            ),
        ),
        (MessageReceived, StatusUpdate),
    ),
    Sample(
        "template_approved",
        template_status(),
        (TemplateUpdate,),
        _template_update(status="APPROVED", reason="NONE", category="UTILITY"),
    ),
    Sample(
        "template_rejected",
        template_status("REJECTED", "INVALID_FORMAT"),
        (TemplateUpdate,),
        _template_update(status="REJECTED", reason="INVALID_FORMAT"),
    ),
    Sample(
        "template_quality",
        template_quality(),
        (TemplateUpdate,),
        _template_update(quality="YELLOW"),
    ),
    Sample(
        "template_category",
        template_category(),
        (TemplateUpdate,),
        _template_update(category="MARKETING", previous_category="UTILITY"),
    ),
    Sample(
        "malformed_item_kept",
        notification(_value(messages=[{"from": "1", "type": "text"}])),
        (UnknownEvent,),
    ),
]


def webhook(body: bytes) -> WebhookRequest:
    return WebhookRequest("POST", WEBHOOK_URL, {"content-type": "application/json"}, body)


def sign(request: WebhookRequest, secret: str | None = None) -> WebhookRequest:
    return meta_signed(request, secret or CONFIG.app_secret.get_secret_value())


def handshake(secret: str | None) -> tuple[WebhookRequest, bytes]:
    return meta_handshake(WEBHOOK_URL, secret or CONFIG.verify_token.get_secret_value())


def open_conversation(address: str, now: datetime) -> list[bytes]:
    return [inbound("text", {"body": "hello"}, sender=address, at=int(now.timestamp()))]


_META = "https://developers.facebook.com/documentation/business-messaging/whatsapp"
FACTS = Facts(
    window=timedelta(hours=24),
    statuses={
        "sent": DeliveryState.SENT,
        "delivered": DeliveryState.DELIVERED,
        "read": DeliveryState.READ,
        "played": DeliveryState.PLAYED,
        "failed": DeliveryState.FAILED,
    },
    media_hash=True,
    sources={
        "window": f"{_META}/messages/send-messages",
        "statuses": f"{_META}/webhooks/reference/messages/status/",
        "media_hash": "docs/whatsapp.md (Media: the sha256 Meta reports)",
    },
)

kit = ChannelKit(
    channel=WhatsAppChannel,
    config=CONFIG,
    fake_api=lambda: FakeWhatsAppAPI(CONFIG),
    webhook=webhook,
    sign=sign,
    samples=SAMPLES,
    unknown_body=notification(
        {"ban_info": {"waba_ban_state": "SCHEDULE_FOR_DISABLE"}}, field="account_update"
    ),
    open_conversation=open_conversation,
    customer=CUSTOMER,
    api_bases=("base_url",),
    outside_window=lambda identity: Message(
        contact=identity,
        template=Template(name="order_update", language="en_US", parameters=["42"]),
    ),
    media=Media(kind=MediaKind.IMAGE, mime_type="image/png", data=b"\x89PNG fake image bytes"),
    facts=FACTS,
    status_body=lambda state: status(state, message_id=f"wamid.OUT.{state}"),
    failed_later=failed_later,
    handshake=handshake,
)
