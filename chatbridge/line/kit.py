"""The LINE conformance kit: test channel, signing, sample webhook events of every type
chatbridge maps (shapes from the Messaging API reference, "Webhook event objects")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from chatbridge.clock import FAKE_EPOCH
from chatbridge.line.channel import LineChannel, LineConfig
from chatbridge.line.fake import FakeLineAPI
from chatbridge.models import (
    ChannelEvent,
    Event,
    Followed,
    Identity,
    MediaKind,
    Message,
    MessageKind,
    MessageReceived,
    Unfollowed,
)
from chatbridge.plugin.kit import ChannelKit, Facts, Quota, Sample
from chatbridge.webhook import WebhookRequest

QUOTA = 5  # a small plan, so the suite spends it
CONFIG = LineConfig(
    channel_secret="line-test-channel-secret",
    channel_access_token="line-test-channel-access-token",
    monthly_quota=QUOTA,
)
CUSTOMER = "U4af4980629e1b2f6c2a16d3c6a5f0ec1"
GROUP = "Ca56f94637c0e6e3d9b3ba8dfb3b1f4c2"
WEBHOOK_URL = "https://support.example.com/webhooks/line"
_T0_MS = int(FAKE_EPOCH.timestamp()) * 1000


def webhook_body(*events: dict[str, Any]) -> bytes:
    return json.dumps({"destination": "Uxxxxxxxxxxxxxx", "events": list(events)}).encode()


def line_event(
    kind: str,
    event_id: str,
    *,
    at_ms: int = _T0_MS,
    user: str = CUSTOMER,
    reply_token: str | None = "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA",  # noqa: S107 (sample)
    **fields: Any,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": kind,
        "mode": "active",
        "timestamp": at_ms,
        "source": {"type": "user", "userId": user},
        "webhookEventId": event_id,
        "deliveryContext": {"isRedelivery": False},
        **fields,
    }
    if reply_token:
        event["replyToken"] = reply_token
    return event


def message(event_id: str, content: dict[str, Any], **fields: Any) -> bytes:
    return webhook_body(line_event("message", event_id, message=content, **fields))


def _expect(check: Callable[[Event], bool]) -> Callable[[list[Event]], None]:
    def assert_event(events: list[Event]) -> None:
        assert check(events[0]), events[0]

    return assert_event


def _message(check: Callable[[Message], bool]) -> Callable[[list[Event]], None]:
    def is_customer_message(event: Event) -> bool:
        return (
            isinstance(event, MessageReceived)
            and event.contact == Identity(channel="line", address=CUSTOMER)
            and event.reply_token is not None
            and check(event.message)
        )

    return _expect(is_customer_message)


_MSG = (MessageReceived,)
SAMPLES = [
    Sample(
        "text",
        message(
            "01HT0000000000000000000001",
            {
                "id": "468789577898262530",
                "type": "text",
                "text": "Hello $ @bot",
                "quoteToken": "q3Plxr",
                "emojis": [
                    {
                        "index": 6,
                        "length": 1,
                        "productId": "5ac1bfd5040ab15980c9b435",
                        "emojiId": "001",
                    }
                ],
                "mention": {
                    "mentionees": [{"index": 8, "length": 4, "type": "user", "userId": "U0"}]
                },
            },
        ),
        _MSG,
        _message(lambda m: m.text == "Hello $ @bot" and "emojis" in m.raw["message"]),
    ),
    Sample(
        "image",
        message(
            "01HT0000000000000000000002",
            {"id": "354718705033693859", "type": "image", "contentProvider": {"type": "line"}},
        ),
        _MSG,
        _message(
            lambda m: (
                m.media[0].kind is MediaKind.IMAGE
                and m.media[0].provider_id == "354718705033693859"
            )
        ),
    ),
    Sample(
        "external_video",
        message(
            "01HT0000000000000000000003",
            {
                "id": "325708",
                "type": "video",
                "duration": 60000,
                "contentProvider": {
                    "type": "external",
                    "originalContentUrl": "https://cdn.example.com/v.mp4",
                    "previewImageUrl": "https://cdn.example.com/v.jpg",
                },
            },
        ),
        _MSG,
        _message(
            lambda m: (
                m.media[0].provider_id is None and m.media[0].url == "https://cdn.example.com/v.mp4"
            )
        ),
    ),
    Sample(
        "audio",
        message(
            "01HT0000000000000000000004",
            {
                "id": "325709",
                "type": "audio",
                "duration": 60000,
                "contentProvider": {"type": "line"},
            },
        ),
        _MSG,
        _message(lambda m: m.media[0].duration_ms == 60000),
    ),
    Sample(
        "file",
        message(
            "01HT0000000000000000000005",
            {"id": "325710", "type": "file", "fileName": "invoice.pdf", "fileSize": 2138},
        ),
        _MSG,
        _message(lambda m: m.media[0].kind is MediaKind.FILE and m.media[0].size == 2138),
    ),
    Sample(
        "location",
        message(
            "01HT0000000000000000000006",
            {
                "id": "325711",
                "type": "location",
                "title": "my location",
                "address": "Tokyo",
                "latitude": 35.65910807942215,
                "longitude": 139.70372892916203,
            },
        ),
        _MSG,
        _message(lambda m: m.location is not None and m.location.address == "Tokyo"),
    ),
    Sample(
        "sticker",
        message(
            "01HT0000000000000000000007",
            {
                "id": "325712",
                "type": "sticker",
                "packageId": "1",
                "stickerId": "1",
                "stickerResourceType": "STATIC",
            },
        ),
        _MSG,
        _message(
            lambda m: m.media[0].kind is MediaKind.STICKER and m.media[0].provider_id == "1/1"
        ),
    ),
    Sample(
        "follow",
        webhook_body(
            line_event("follow", "01HT0000000000000000000008", follow={"isUnblocked": False})
        ),
        (Followed,),
    ),
    Sample(
        "unfollow",
        webhook_body(line_event("unfollow", "01HT0000000000000000000009", reply_token=None)),
        (Unfollowed,),
    ),
    Sample(
        "join",
        webhook_body(
            line_event(
                "join", "01HT000000000000000000000A", source={"type": "group", "groupId": GROUP}
            )
        ),
        (ChannelEvent,),
        _expect(lambda e: e.contact == Identity(channel="line", address=GROUP)),
    ),
    Sample(
        "leave",
        webhook_body(
            line_event(
                "leave",
                "01HT000000000000000000000B",
                reply_token=None,
                source={"type": "group", "groupId": GROUP},
            )
        ),
        (ChannelEvent,),
    ),
    Sample(
        "postback",
        webhook_body(
            line_event(
                "postback",
                "01HT000000000000000000000C",
                postback={"data": "action=buy&itemid=111", "params": {}},
            )
        ),
        _MSG,
        _message(
            lambda m: (
                m.kind is MessageKind.INTERACTIVE_REPLY
                and m.interactive_reply is not None
                and m.interactive_reply.id == "action=buy&itemid=111"
            )
        ),
    ),
    Sample(
        "beacon",
        webhook_body(
            line_event(
                "beacon",
                "01HT000000000000000000000D",
                beacon={"hwid": "d41d8cd98f", "type": "enter"},
            )
        ),
        (ChannelEvent,),
        _expect(lambda e: isinstance(e, ChannelEvent) and e.data["hwid"] == "d41d8cd98f"),
    ),
    Sample(
        "redelivered",
        webhook_body(
            line_event(
                "follow", "01HT000000000000000000000E", deliveryContext={"isRedelivery": True}
            )
        ),
        (Followed,),
        _expect(lambda e: e.raw["deliveryContext"]["isRedelivery"] is True),
    ),
    Sample(
        "standby_has_no_reply_token",
        webhook_body({**line_event("follow", "01HT000000000000000000000F"), "mode": "standby"}),
        (Followed,),
        _expect(lambda e: e.reply_token is None),
    ),
    Sample("verification", webhook_body(), ()),
]


def webhook(body: bytes) -> WebhookRequest:
    return WebhookRequest("POST", WEBHOOK_URL, {"content-type": "application/json"}, body)


def sign(request: WebhookRequest, secret: str | None = None) -> WebhookRequest:
    """LINE's X-Line-Signature (written here, not taken from the channel's code)."""
    key = (secret or CONFIG.channel_secret.get_secret_value()).encode()
    digest = hmac.new(key, request.body, hashlib.sha256).digest()
    return request.with_headers(**{"X-Line-Signature": base64.b64encode(digest).decode()})


def _follow_event(kind: str) -> Callable[[str, datetime], list[bytes]]:
    def bodies(address: str, now: datetime) -> list[bytes]:
        at_ms = int(now.timestamp() * 1000)
        token = None if kind == "unfollow" else f"rt-{kind}-{at_ms}"
        event_id = f"{kind}-{address}-{at_ms}"
        event = line_event(kind, event_id, at_ms=at_ms, user=address, reply_token=token)
        return [webhook_body(event)]

    return bodies


def fake_api(quota: int | None = 200) -> FakeLineAPI:
    """LINE's API, serving the sample image's content (for downloads from the sandbox)."""
    content = {"354718705033693859": b"\xff\xd8\xff a jpeg"}
    return FakeLineAPI(CONFIG, content=content, issued_tokens_only=True, quota=quota)


FREE_PLAN_SOURCE = (
    "https://www.lycbiz.com/jp/service/line-official-account/plan/ (コミュニケーションプラン: "
    "200 messages a month); https://lycbiz.com/jp/news/line-official-account/20221031/"
)
FACTS = Facts(
    requires_follower=True,
    quota=Quota(limit=QUOTA, timezone="Asia/Tokyo"),
    reply_ttl=timedelta(minutes=1),
    sources={
        "requires_follower": "https://line.github.io/line-bot-sdk-nodejs/apidocs/type-aliases/"
        "UnfollowEvent.html",
        # Pushes count, replies do not; the month's time zone (JST) is not confirmed.
        "quota": "https://developers.line.biz/en/tips/2026/05/28/how-to-count-messages/",
        "reply_ttl": "https://developers.line.biz/en/reference/messaging-api/#send-reply-message",
    },
)


def open_conversation(address: str, now: datetime) -> list[bytes]:
    at_ms = int(now.timestamp() * 1000)
    return [
        webhook_body(
            line_event(
                "follow",
                f"follow-{address}-{at_ms}",
                at_ms=at_ms,
                user=address,
                reply_token=f"rt-follow-{at_ms}",
            )
        ),
        webhook_body(
            line_event(
                "message",
                f"msg-{address}-{at_ms}",
                at_ms=at_ms,
                user=address,
                reply_token=f"rt-msg-{at_ms}",
                message={"id": f"m{at_ms}", "type": "text", "text": "hi"},
            )
        ),
    ]


kit = ChannelKit(
    channel=LineChannel,
    config=CONFIG,
    fake_api=fake_api,
    webhook=webhook,
    sign=sign,
    samples=SAMPLES,
    unknown_body=webhook_body(
        line_event(
            "videoPlayComplete",
            "01HT00000000000000000000ZZ",
            videoPlayComplete={"trackingId": "track-id"},
        )
    ),
    open_conversation=open_conversation,
    customer=CUSTOMER,
    api_bases=("api_base", "data_base"),
    outside_window=None,
    media=None,
    facts=FACTS,
    opt_out={"unfollow": _follow_event("unfollow")},
    opt_in={"follow": _follow_event("follow")},
    misconfigured={"a negative monthly quota": {"monthly_quota": -1}},
    edge_configs={"a quota of 0 (pushes refused, replies only)": {"monthly_quota": 0}},
    variants={
        # The default quota: Japan's free plan (the Communication plan, since June 2023).
        "free-plan": {
            "config": LineConfig(
                channel_secret=CONFIG.channel_secret,
                channel_access_token=CONFIG.channel_access_token,
            ),
            "fake_api": lambda: fake_api(quota=None),  # its month never turns
            "facts": replace(
                FACTS,
                quota=Quota(limit=200, timezone="Asia/Tokyo"),
                sources={**FACTS.sources, "quota": FREE_PLAN_SOURCE},
            ),
        }
    },
)
