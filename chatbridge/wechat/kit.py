"""The WeChat conformance kit: a secure-mode (encrypted) account, sample pushes for every
message and event type, and the fake API.

Sample XML follows "Message Management > Receiving standard messages / event pushes".
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlencode

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from chatbridge.models import (
    ChannelEvent,
    DeliveryState,
    Event,
    Followed,
    Identity,
    Media,
    MediaKind,
    Message,
    MessageKind,
    MessageReceived,
    StatusUpdate,
    Template,
    Unfollowed,
)
from chatbridge.plugin.kit import ChannelKit, Facts, Sample
from chatbridge.webhook import WebhookRequest
from chatbridge.wechat.channel import WeChatChannel, WeChatConfig
from chatbridge.wechat.fake import FakeWeChatAPI
from chatbridge.wechat.payloads import render_xml

CONFIG = WeChatConfig(
    app_id="wx5823bf96d3bd56c7",
    app_secret="wechat-test-app-secret",
    token="wechat-test-token",
    encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    mode="secure",
)
ACCOUNT = "gh_3d5b8a8c7e11"
CUSTOMER = "oLVPpjqs9BhvzwPj5A-vTYAX3GLc"
WEBHOOK_URL = "https://support.example.com/webhooks/wechat"
_T0 = 1767225600


def _document(msg_type: str, at: int, sender: str, fields: dict[str, str | int]) -> bytes:
    head: dict[str, str | int] = {"ToUserName": ACCOUNT, "FromUserName": sender}
    return render_xml({**head, "CreateTime": at, "MsgType": msg_type, **fields})


def push(msg_type: str, at: int = _T0, sender: str = CUSTOMER, **fields: str | int) -> bytes:
    """A plaintext push as WeChat builds it."""
    return _document(msg_type, at, sender, fields)


def event(name: str, **fields: str | int) -> bytes:
    return _document("event", _T0, CUSTOMER, {"Event": name, **fields})


def webhook(body: bytes) -> WebhookRequest:
    return WebhookRequest("POST", WEBHOOK_URL, {"content-type": "text/xml"}, body)


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode(), usedforsecurity=False).hexdigest()


def _encrypt(message: bytes) -> str:
    """``message`` encrypted the way WeChat's secure mode does: AES-256-CBC with the
    EncodingAESKey (IV: its first 16 bytes) over random(16) + length + message + appid,
    PKCS#7-padded to 32 bytes."""
    assert CONFIG.encoding_aes_key is not None
    key = base64.b64decode(CONFIG.encoding_aes_key.get_secret_value() + "=")
    plain = os.urandom(16) + struct.pack(">I", len(message)) + message + CONFIG.app_id.encode()
    padding = 32 - len(plain) % 32
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    encrypted = encryptor.update(plain + bytes([padding]) * padding) + encryptor.finalize()
    return base64.b64encode(encrypted).decode()


def sign(request: WebhookRequest, secret: str | None = None) -> WebhookRequest:
    """Encrypt the body and sign the URL the way WeChat does in secure mode (written
    here, not taken from the channel's code)."""
    token = secret or CONFIG.token.get_secret_value()
    encrypted = _encrypt(request.body)
    timestamp, nonce = "1767225600", "1320562132"
    query = {
        "signature": _sha1(token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "openid": CUSTOMER,
        "encrypt_type": "aes",
        "msg_signature": _sha1(token, timestamp, nonce, encrypted),
    }
    body = render_xml({"ToUserName": ACCOUNT, "Encrypt": encrypted})
    return WebhookRequest("POST", f"{request.url}?{urlencode(query)}", request.headers, body)


def _expect(check: Callable[[Event], bool]) -> Callable[[list[Event]], None]:
    def assert_event(events: list[Event]) -> None:
        assert events[0].contact == Identity(channel="wechat", address=CUSTOMER)
        assert check(events[0]), events[0]

    return assert_event


def _message(check: Callable[[Message], bool]) -> Callable[[list[Event]], None]:
    return _expect(lambda e: isinstance(e, MessageReceived) and check(e.message))


_MSG = (MessageReceived,)
SAMPLES = [
    Sample(
        "text",
        push("text", Content="你好, is my order shipped?", MsgId="23637352235060880"),
        _MSG,
        _message(lambda m: m.text == "你好, is my order shipped?" and m.id == "23637352235060880"),
    ),
    Sample(
        "image",
        push("image", PicUrl="https://mmbiz.example/pic", MediaId="m_img", MsgId="2"),
        _MSG,
        _message(
            lambda m: m.media[0].kind is MediaKind.IMAGE and m.media[0].provider_id == "m_img"
        ),
    ),
    Sample(
        "voice",
        push("voice", MediaId="m_voice", Format="amr", Recognition="hello", MsgId="3"),
        _MSG,
        _message(lambda m: m.media[0].kind is MediaKind.VOICE and m.text == "hello"),
    ),
    Sample(
        "video",
        push("video", MediaId="m_video", ThumbMediaId="m_thumb", MsgId="4"),
        _MSG,
        _message(lambda m: m.media[0].kind is MediaKind.VIDEO),
    ),
    Sample(
        "shortvideo",
        push("shortvideo", MediaId="m_short", ThumbMediaId="m_t", MsgId="5"),
        _MSG,
        _message(lambda m: m.media[0].provider_id == "m_short"),
    ),
    Sample(
        "location",
        push(
            "location",
            Location_X="23.134521",
            Location_Y="113.358803",
            Scale="20",
            Label="Guangzhou",
            MsgId="6",
        ),
        _MSG,
        _message(lambda m: m.location is not None and m.location.latitude == 23.134521),
    ),
    Sample(
        "link",
        push("link", Title="Order", Description="#42", Url="https://shop.example/42", MsgId="7"),
        _MSG,
        _message(
            lambda m: (
                m.kind is MessageKind.CARD
                and m.card is not None
                and m.card.url == "https://shop.example/42"
            )
        ),
    ),
    Sample("subscribe", event("subscribe"), (Followed,)),
    Sample(
        "subscribe_by_qr",
        event("subscribe", EventKey="qrscene_123123", Ticket="TICKET"),
        (Followed,),
        _expect(lambda e: e.raw["EventKey"] == "qrscene_123123"),
    ),
    Sample("unsubscribe", event("unsubscribe"), (Unfollowed,)),
    Sample(
        "scan",
        event("SCAN", EventKey="123123", Ticket="TICKET"),
        (ChannelEvent,),
        _expect(lambda e: isinstance(e, ChannelEvent) and e.name == "SCAN" and e.opens_window),
    ),
    Sample(
        "location_report",
        event("LOCATION", Latitude="23.137466", Longitude="113.352425", Precision="119.385040"),
        (ChannelEvent,),
        _expect(lambda e: isinstance(e, ChannelEvent) and not e.opens_window),
    ),
    Sample(
        "menu_click",
        event("CLICK", EventKey="EVENTKEY"),
        (ChannelEvent,),
        _expect(lambda e: isinstance(e, ChannelEvent) and e.data["EventKey"] == "EVENTKEY"),
    ),
    Sample("menu_view", event("VIEW", EventKey="https://shop.example/"), (ChannelEvent,)),
    Sample(
        "template_finished",
        event("TEMPLATESENDJOBFINISH", MsgID="200163836", Status="success"),
        (StatusUpdate,),
        _expect(lambda e: isinstance(e, StatusUpdate) and e.state is DeliveryState.DELIVERED),
    ),
    Sample(
        "template_blocked",
        event("TEMPLATESENDJOBFINISH", MsgID="200163840", Status="failed:user block"),
        (StatusUpdate,),
        _expect(
            lambda e: (
                isinstance(e, StatusUpdate)
                and e.state is DeliveryState.FAILED
                and e.errors[0].code == "failed:user block"
            )
        ),
    ),
]


def handshake(secret: str | None) -> tuple[WebhookRequest, bytes]:
    """WeChat's server URL verification GET, and the echostr it must get back."""
    token = secret or CONFIG.token.get_secret_value()
    timestamp, nonce, echo = "1767225600", "1320562132", "5837397520665436492"
    query = {"signature": _sha1(token, timestamp, nonce), "timestamp": timestamp}
    query.update(nonce=nonce, echostr=echo)
    return WebhookRequest("GET", f"{WEBHOOK_URL}?{urlencode(query)}"), echo.encode()


def _follow(event_name: str) -> Callable[[str, datetime], list[bytes]]:
    def bodies(address: str, now: datetime) -> list[bytes]:
        return [_document("event", int(now.timestamp()), address, {"Event": event_name})]

    return bodies


def template_finished(status: str) -> bytes:
    """A template send job's result push."""
    return event("TEMPLATESENDJOBFINISH", MsgID=f"job-{status}", Status=status)


FACTS = Facts(
    window=timedelta(hours=48),
    requires_follower=True,
    statuses={
        "success": DeliveryState.DELIVERED,
        "failed:user block": DeliveryState.FAILED,
        "failed: system failed": DeliveryState.FAILED,
    },
    sources={
        # A user's message allows 48 hours; since June 2023 a follow, menu click or QR
        # scan only 1 minute (third parties quoting WeChat; chatbridge gives them 48 h).
        "window": "https://developers.weixin.qq.com/miniprogram/en/dev/framework/"
        "open-ability/customer-message/send.html",
        "requires_follower": "https://developers.weixin.qq.com/doc/service/en/guide/product/"
        "template_message/Template_Message_Interface.html",
        "statuses": "https://pkg.go.dev/github.com/c77cc/wechat/mp/message/template",
    },
)


def open_conversation(address: str, now: datetime) -> list[bytes]:
    at = int(now.timestamp())
    return [push("text", at=at, sender=address, Content="hi", MsgId=f"open-{address}-{at}")]


kit = ChannelKit(
    channel=WeChatChannel,
    config=CONFIG,
    fake_api=lambda: FakeWeChatAPI(CONFIG),
    webhook=webhook,
    sign=sign,
    samples=SAMPLES,
    unknown_body=event("user_pay_from_pay_cell", OrderId="1"),
    open_conversation=open_conversation,
    customer=CUSTOMER,
    api_bases=("base_url",),
    outside_window=lambda identity: Message(
        contact=identity,
        template=Template(
            name="ngqIpbwh8bUfcSsECmogfXcV14J0tQlEpBO27izEYtY",
            named_parameters={"order": "#42", "status": "shipped"},
        ),
    ),
    media=Media(kind=MediaKind.IMAGE, mime_type="image/jpeg", data=b"\xff\xd8\xff fake jpeg"),
    facts=FACTS,
    unsigned_parts=frozenset({"openid"}),  # the subscriber, beside the signature
    status_body=template_finished,
    handshake=handshake,
    opt_out={"unsubscribe": _follow("unsubscribe")},
    opt_in={"subscribe": _follow("subscribe")},
)
