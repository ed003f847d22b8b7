"""The Messenger conformance kit, and the kit builders Instagram's kit shares.

Sample payloads follow the shapes of Meta's Messenger Platform webhook references
("messages", "message_echoes", "messaging_postbacks", "message_reactions",
"message_reads", "message_deliveries"); sources in docs/messenger.md.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from chatbridge.clock import FAKE_EPOCH
from chatbridge.messenger.channel import MessengerChannel, MessengerConfig
from chatbridge.messenger.fake import FakeMessengerAPI
from chatbridge.models import (
    ChannelEvent,
    DeliveryState,
    Event,
    Identity,
    Media,
    MediaKind,
    Message,
    MessageKind,
    MessageReceived,
    StatusUpdate,
    UnknownEvent,
)
from chatbridge.plugin import ChannelKit, Facts, FakeAPI, Sample, WebhookRequest

T0 = int(FAKE_EPOCH.timestamp()) * 1000  # in epoch milliseconds
_MSG = (MessageReceived,)


class Bodies:
    """Webhook bodies of one account: ``object``, the account id and a customer."""

    def __init__(self, webhook_object: str, account: str, customer: str) -> None:
        self.webhook_object = webhook_object
        self.account = account
        self.customer = customer

    def notification(self, *items: dict[str, Any]) -> bytes:
        """One entry carrying ``items`` in ``messaging``."""
        entry = {"id": self.account, "time": T0 + 1000, "messaging": list(items)}
        return json.dumps({"object": self.webhook_object, "entry": [entry]}).encode()

    def item(self, *, sender: str | None = None, at: int = T0, **event: Any) -> dict[str, Any]:
        """A ``messaging[]`` item from the customer (or ``sender``) to the account."""
        return {
            "sender": {"id": sender or self.customer},
            "recipient": {"id": self.account},
            "timestamp": at,
            **event,
        }

    def message(
        self, mid: str, *, sender: str | None = None, at: int = T0, **content: Any
    ) -> bytes:
        """A notification of one customer message."""
        return self.notification(self.item(sender=sender, at=at, message={"mid": mid, **content}))

    def echo(self, mid: str, text: str) -> bytes:
        """A notification of a message the account itself sent to the customer."""
        message = {"is_echo": True, "app_id": 1517776481860111, "mid": mid, "text": text}
        item = self.item(sender=self.account, message=message)
        item["recipient"] = {"id": self.customer}
        return self.notification(item)


def meta_signed(request: WebhookRequest, app_secret: str) -> WebhookRequest:
    """``request`` with Meta's X-Hub-Signature-256 (written here from Meta's docs, not
    taken from the channels' code)."""
    digest = hmac.new(app_secret.encode(), request.body, hashlib.sha256).hexdigest()
    return request.with_headers(**{"X-Hub-Signature-256": f"sha256={digest}"})


def meta_handshake(url: str, verify_token: str) -> tuple[WebhookRequest, bytes]:
    """Meta's verification GET to ``url``, and the challenge it must get back."""
    challenge = "1158201444"
    query = {"hub.mode": "subscribe", "hub.verify_token": verify_token}
    query["hub.challenge"] = challenge
    return WebhookRequest("GET", f"{url}?{urlencode(query)}"), challenge.encode()


def received(check: Callable[[Message], bool]) -> Callable[[list[Event]], None]:
    """A sample check on the message of the one MessageReceived event."""

    def run(events: list[Event]) -> None:
        [event] = events
        assert isinstance(event, MessageReceived)
        assert check(event.message), event.message

    return run


def statuses(state: DeliveryState, *message_ids: str) -> Callable[[list[Event]], None]:
    def run(events: list[Event]) -> None:
        assert [e.message_id for e in events if isinstance(e, StatusUpdate)] == list(message_ids)
        assert all(isinstance(e, StatusUpdate) and e.state is state for e in events)

    return run


def _echo(events: list[Event]) -> None:
    [event] = events
    assert isinstance(event, ChannelEvent)
    assert (event.name, event.opens_window, event.data["text"]) == ("echo", False, "On its way")


def shared_samples(bodies: Bodies) -> list[Sample]:
    """The samples Messenger and Instagram map the same way."""
    item = bodies.item
    return [
        Sample(
            "text",
            bodies.message("m_text", text="hello, world!"),
            _MSG,
            received(lambda m: m.kind is MessageKind.TEXT and m.text == "hello, world!"),
        ),
        Sample(
            "quick_reply",
            bodies.message("m_qr", text="Red", quick_reply={"payload": "COLOR_RED"}),
            _MSG,
            received(
                lambda m: (
                    m.interactive_reply is not None
                    and (m.interactive_reply.id, m.interactive_reply.title) == ("COLOR_RED", "Red")
                )
            ),
        ),
        Sample(
            "inline_reply",
            bodies.message("m_re", text="this one", reply_to={"mid": "m_quoted"}),
            _MSG,
            received(lambda m: m.reply_to == "m_quoted"),
        ),
        Sample(
            "image",
            bodies.message(
                "m_img",
                attachments=[{"type": "image", "payload": {"url": "https://cdn.example/a.png"}}],
            ),
            _MSG,
            received(
                lambda m: (
                    m.kind is MessageKind.MEDIA
                    and m.media[0].kind is MediaKind.IMAGE
                    and m.media[0].url == "https://cdn.example/a.png"
                )
            ),
        ),
        Sample(
            "postback",
            bodies.notification(
                item(postback={"mid": "m_pb", "title": "Get Started", "payload": "GET_STARTED"})
            ),
            _MSG,
            received(
                lambda m: (
                    m.interactive_reply is not None
                    and m.interactive_reply.id == "GET_STARTED"
                    and m.id == "m_pb"
                )
            ),
        ),
        Sample(
            "reaction",
            bodies.notification(
                item(reaction={"mid": "m_out", "action": "react", "reaction": "love", "emoji": "❤️"})
            ),
            _MSG,
            received(lambda m: m.reaction is not None and m.reaction.emoji == "❤️"),
        ),
        Sample(
            "unreaction",
            bodies.notification(item(reaction={"mid": "m_out", "action": "unreact"})),
            _MSG,
            received(lambda m: m.reaction is not None and m.reaction.emoji == ""),
        ),
        Sample("echo", bodies.echo("m_echo", "On its way"), (ChannelEvent,), _echo),
        Sample(
            "batch",
            bodies.notification(
                item(message={"mid": "m_b1", "text": "one"}),
                item(message={"mid": "m_b2", "text": "two"}),
            ),
            (MessageReceived, MessageReceived),
        ),
        Sample(
            "malformed_item_kept",
            bodies.notification(item(message={"text": "no mid"}), item(message={"mid": "m_ok"})),
            (UnknownEvent, MessageReceived),
        ),
    ]


_TAGS = "https://developers.facebook.com/docs/messenger-platform/send-messages/message-tags/"


def facts(
    statuses: dict[str, DeliveryState | None], tags: dict[str, timedelta | None], source: str
) -> Facts:
    """The Messenger Platform's rules: a 24-hour window the customer opens, extended for
    messages sent with one of ``tags``."""
    return Facts(
        window=timedelta(hours=24),
        tags=tags,
        statuses=statuses,
        sources={"window": source, "statuses": source, "tags": _TAGS},
    )


def build_kit(
    channel: type[MessengerChannel],
    config: MessengerConfig,
    bodies: Bodies,
    samples: Sequence[Sample],
    fake_api: Callable[[], FakeAPI],
    facts: Facts,
    status_body: Callable[[str], bytes],
) -> ChannelKit[MessengerChannel]:
    """A kit for a Messenger Platform channel."""
    webhook_url = f"https://support.example.com/webhooks/{channel.name}"

    def webhook(body: bytes) -> WebhookRequest:
        return WebhookRequest("POST", webhook_url, {"content-type": "application/json"}, body)

    def sign(request: WebhookRequest, secret: str | None = None) -> WebhookRequest:
        return meta_signed(request, secret or config.app_secret.get_secret_value())

    def handshake(secret: str | None) -> tuple[WebhookRequest, bytes]:
        return meta_handshake(webhook_url, secret or config.verify_token.get_secret_value())

    def open_conversation(address: str, now: datetime) -> list[bytes]:
        at = int(now.timestamp() * 1000)
        return [bodies.message(f"m_hello.{at}", sender=address, at=at, text="hello")]

    def human_agent_reply(identity: Identity) -> Message:
        return Message(contact=identity, text="A human agent here", tag="HUMAN_AGENT")

    unknown = bodies.item(game_play={"game_id": "1", "player_id": "2", "score": 3})
    return ChannelKit(
        channel=channel,
        config=config,
        fake_api=fake_api,
        webhook=webhook,
        sign=sign,
        samples=samples,
        unknown_body=bodies.notification(unknown),
        open_conversation=open_conversation,
        customer=bodies.customer,
        outside_window=human_agent_reply,
        media=Media(kind=MediaKind.IMAGE, mime_type="image/png", data=b"\x89PNG fake image"),
        api_bases=("base_url",),
        facts=facts,
        status_body=status_body,
        handshake=handshake,
    )


CONFIG = MessengerConfig(
    page_id="108386451908923",
    access_token="EAAB-messenger-test-page-token",
    app_secret="messenger-test-app-secret",
    verify_token="messenger-test-verify-token",
)
CUSTOMER = "5342145742535213"  # a page-scoped id (PSID)
BODIES = Bodies("page", CONFIG.page_id, CUSTOMER)

SAMPLES = [
    *shared_samples(BODIES),
    Sample(
        "file",
        BODIES.message(
            "m_file",
            attachments=[{"type": "file", "payload": {"url": "https://cdn.example/a.pdf"}}],
        ),
        _MSG,
        received(lambda m: m.media[0].kind is MediaKind.FILE),
    ),
    Sample(
        "fallback_attachment",
        BODIES.message("m_fallback", attachments=[{"type": "fallback"}]),
        _MSG,
        received(lambda m: m.kind is MessageKind.UNSUPPORTED and "message" in m.raw),
    ),
    Sample(
        "read",
        BODIES.notification(BODIES.item(read={"watermark": T0 - 5})),
        (StatusUpdate,),
        statuses(DeliveryState.READ, f"watermark:{T0 - 5}"),
    ),
    Sample(
        "delivery",
        BODIES.notification(
            {**BODIES.item(delivery={"mids": ["m_out1", "m_out2"], "watermark": T0})}
        ),
        (StatusUpdate, StatusUpdate),
        statuses(DeliveryState.DELIVERED, "m_out1", "m_out2"),
    ),
    Sample(
        "delivery_watermark_only",
        BODIES.notification(BODIES.item(delivery={"watermark": T0})),
        (StatusUpdate,),
        statuses(DeliveryState.DELIVERED, f"watermark:{T0}"),
    ),
]


def status_body(event: str) -> bytes:
    """A ``delivery`` or ``read`` notification (by watermark)."""
    events: dict[str, Any] = {event: {"watermark": T0 + len(event)}}
    return BODIES.notification(BODIES.item(**events))


kit = build_kit(
    MessengerChannel,
    CONFIG,
    BODIES,
    SAMPLES,
    lambda: FakeMessengerAPI(CONFIG),
    facts(
        {"delivery": DeliveryState.DELIVERED, "read": DeliveryState.READ},
        {
            "HUMAN_AGENT": timedelta(days=7),
            "ACCOUNT_UPDATE": None,
            "CONFIRMED_EVENT_UPDATE": None,
            "POST_PURCHASE_UPDATE": None,
        },
        "https://developers.facebook.com/docs/messenger-platform/send-messages",
    ),
    status_body,
)
