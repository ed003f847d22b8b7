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

from chatbridge.clock import FAKE_EPOCH
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
from chatbridge.wechat.qrcode import QRScan

_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"  # an EncodingAESKey: 43 Base64 characters
CONFIG = WeChatConfig(
    app_id="wx5823bf96d3bd56c7",
    app_secret="wechat-test-app-secret",
    token="wechat-test-token",
    encoding_aes_key=_KEY,
    mode="secure",
)
ACCOUNT = "gh_3d5b8a8c7e11"
CUSTOMER = "oLVPpjqs9BhvzwPj5A-vTYAX3GLc"
WEBHOOK_URL = "https://support.example.com/webhooks/wechat"
_T0 = int(FAKE_EPOCH.timestamp())


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


def _plain(message: bytes, app_id: str = CONFIG.app_id) -> bytes:
    """What WeChat's secure mode encrypts, before padding: random(16) + the message's
    length (big-endian uint32) + the message + the appid."""
    return os.urandom(16) + struct.pack(">I", len(message)) + message + app_id.encode()


def _seal(plain: bytes) -> str:
    """``plain`` (padded already) encrypted with AES-256-CBC under the EncodingAESKey (IV:
    its first 16 bytes), in Base64."""
    assert CONFIG.encoding_aes_key is not None
    key = base64.b64decode(CONFIG.encoding_aes_key.get_secret_value() + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def _padded(plain: bytes) -> bytes:
    """``plain`` PKCS#7-padded to 32 bytes (a whole block of 32 when it fits exactly)."""
    padding = 32 - len(plain) % 32
    return plain + bytes([padding]) * padding


def _encrypt(message: bytes, app_id: str = CONFIG.app_id) -> str:
    """``message`` encrypted the way WeChat's secure mode does."""
    return _seal(_padded(_plain(message, app_id)))


def _envelope(
    request: WebhookRequest,
    encrypted: str,
    secret: str | None = None,
    timestamp: str = str(_T0),
    element: str | None = None,
) -> WebhookRequest:
    """The push carrying ``encrypted`` (or ``element``, raw XML, as its Encrypt), with
    its URL signed the way WeChat does in secure mode (an empty ``timestamp``: left
    out)."""
    token, nonce = secret or CONFIG.token.get_secret_value(), "1320562132"
    query = {
        "signature": _sha1(token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "openid": CUSTOMER,
        "encrypt_type": "aes",
        "msg_signature": _sha1(token, timestamp, nonce, encrypted),
    }
    query = {name: value for name, value in query.items() if value}
    if element is None:
        body = render_xml({"ToUserName": ACCOUNT, "Encrypt": encrypted})
    else:
        body = f"<xml><ToUserName>{ACCOUNT}</ToUserName><Encrypt>{element}</Encrypt></xml>".encode()
    return WebhookRequest("POST", f"{request.url}?{urlencode(query)}", request.headers, body)


def sign(request: WebhookRequest, secret: str | None = None) -> WebhookRequest:
    """Encrypt the body and sign the URL the way WeChat does in secure mode (written
    here, not taken from the channel's code)."""
    return _envelope(request, _encrypt(request.body), secret)


def _fitted(message: bytes, block: int, remainder: int) -> bytes:
    """``message`` with trailing spaces, so its plaintext's length is ``remainder``
    modulo ``block``."""
    spaces = (remainder - len(_plain(message))) % block
    return message + b" " * spaces


def _broken() -> dict[str, WebhookRequest]:
    """Pushes signed with the token whose sealed content is broken as only a holder of
    the token and the AES key could break it: each must be refused with a 4xx."""
    request = webhook(b"")
    message = push("text", Content="broken", MsgId="broken-1")
    sealed = _encrypt(message)
    middle = len(sealed) // 2
    zero_padded = _plain(message) + bytes(32 - len(_plain(message)) % 32)
    padded_33 = _plain(_fitted(message, 16, 16 - 33 % 16))
    app_id = CONFIG.app_id.encode()
    beyond = bytes(16) + struct.pack(">I", 2**32 - len(app_id) - 4) + message + app_id
    return {
        "padding byte 0": _envelope(request, _seal(zero_padded)),
        "padding 33 (beyond the 32-byte block)": _envelope(
            request, _seal(padded_33 + bytes([33]) * 33)
        ),
        "padding longer than the message": _envelope(request, _seal(bytes([32]) * 32)),
        "not whole AES blocks": _envelope(request, base64.b64encode(bytes(24)).decode()),
        "a character that is not Base64": _envelope(
            request, sealed[:middle] + "!" + sealed[middle:]
        ),
        "sealed for another appid": _envelope(request, _encrypt(message, "wx0000000000000000")),
        "an Encrypt element with children": _envelope(request, "", element="<a>1</a>"),
        "signed without a timestamp": _envelope(request, sealed, timestamp=""),
        # read as a signed number, this length would point at the appid from the end
        "a length beyond 2**31": _envelope(request, _seal(_padded(beyond))),
    }


def _expect(check: Callable[[Event], bool]) -> Callable[[list[Event]], None]:
    def assert_event(events: list[Event]) -> None:
        assert events[0].contact == Identity(channel="wechat", address=CUSTOMER)
        assert check(events[0]), events[0]

    return assert_event


def _message(check: Callable[[Message], bool]) -> Callable[[list[Event]], None]:
    return _expect(lambda e: isinstance(e, MessageReceived) and check(e.message))


def _scanned(scan: QRScan) -> Callable[[list[Event]], None]:
    """The last event is the ``SCAN`` ChannelEvent of ``scan``, opening the window; a
    Followed before it reports the same scan."""

    def assert_scan(events: list[Event]) -> None:
        last = events[-1]
        assert isinstance(last, ChannelEvent) and last.name == "SCAN" and last.opens_window
        assert all(QRScan.of(e) == scan for e in events), events

    return assert_scan


_MSG = (MessageReceived,)
SAMPLES = [
    Sample(
        "text",
        push("text", Content="你好, is my order shipped?", MsgId="23637352235060880"),
        _MSG,
        _message(lambda m: m.text == "你好, is my order shipped?" and m.id == "23637352235060880"),
    ),
    Sample(  # its plaintext fills whole 32-byte blocks: the padding is a block of 32
        "text_padded_by_a_whole_block",
        _fitted(push("text", Content="whole block", MsgId="23637352235060881"), 32, 0),
        _MSG,
        _message(lambda m: m.text == "whole block"),
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
    Sample(  # a second later than "subscribe", which would make it a retry of that push
        "subscribe_by_qr",
        push("event", at=_T0 + 1, Event="subscribe", EventKey="qrscene_123123", Ticket="TICKET"),
        (Followed, ChannelEvent),
        _scanned(QRScan(scene="123123", ticket="TICKET", followed=True)),
    ),
    Sample(
        "subscribe_by_qr_with_scene_str",
        push("event", at=_T0 + 2, Event="subscribe", EventKey="qrscene_shop-42", Ticket="T2"),
        (Followed, ChannelEvent),
        _scanned(QRScan(scene="shop-42", ticket="T2", followed=True)),
    ),
    Sample("unsubscribe", event("unsubscribe"), (Unfollowed,)),
    Sample(
        "scan",
        event("SCAN", EventKey="123123", Ticket="TICKET"),
        (ChannelEvent,),
        _scanned(QRScan(scene="123123", ticket="TICKET")),
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
    timestamp, nonce, echo = str(_T0), "1320562132", "5837397520665436492"
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
    failed_later=lambda msgid, openid: _document(
        "event",
        _T0,
        openid,
        {"Event": "TEMPLATESENDJOBFINISH", "MsgID": msgid, "Status": "failed:user block"},
    ),
    handshake=handshake,
    opt_out={"unsubscribe": _follow("unsubscribe")},
    opt_in={"subscribe": _follow("subscribe")},
    broken=_broken(),
    misconfigured={
        "an EncodingAESKey with a character outside Base64": {
            "encoding_aes_key": _KEY[:20] + "*" + _KEY[20:]
        },
        "an EncodingAESKey of 39 characters (valid Base64 of 29 bytes)": {
            "encoding_aes_key": _KEY[:39]
        },
        "secure mode without an EncodingAESKey": {"encoding_aes_key": None},
    },
)
