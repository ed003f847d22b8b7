"""WeChat specifics: URL verification, modes, crypto, passive replies, access-token
caching and refresh, 48-hour window and friend rules, error codes, hostile XML."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx
import pytest
import respx
from hypothesis import given, settings

from chatbridge import (
    Card,
    ConfigurationError,
    FakeClock,
    HandshakeError,
    Message,
    MessageReceived,
    PayloadError,
    PolicyRefusedError,
    ProviderAuthError,
    ProviderPolicyError,
    RateLimitedError,
    RefusalReason,
    SignatureError,
    Template,
    UnsupportedMessageError,
    WebhookRequest,
)
from chatbridge.errors import DeliveryUnknownError
from chatbridge.models import Media, MediaKind
from chatbridge.plugin import Inbound
from chatbridge.wechat import WeChatChannel, WeChatConfig, kit
from chatbridge.wechat.crypto import MessageCrypto, aes_key
from chatbridge.wechat.fake import FakeWeChatAPI, wechat_error
from chatbridge.wechat.inbound import parse_push
from chatbridge.wechat.payloads import parse_xml
from chatbridge.wechat.signature import sha1_signature
from tests.mutations import broken

pytestmark = pytest.mark.anyio
CUSTOMER = kit.CUSTOMER


@dataclass
class Setup:
    channel: WeChatChannel
    api: FakeWeChatAPI
    clock: FakeClock
    router: respx.MockRouter

    async def push(self, body: bytes) -> list[object]:
        return list((await self.channel.receive(kit.sign(kit.webhook(body)))).events)


@pytest.fixture
async def wx() -> AsyncIterator[Setup]:
    api, clock = FakeWeChatAPI(kit.CONFIG), FakeClock()
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.route(host=api.hosts[0]).mock(side_effect=api)
        channel = WeChatChannel(kit.CONFIG, clock=clock)
        yield Setup(channel, api, clock, router)
        await channel.aclose()


def to(**content: object) -> Message:
    return Message.model_validate(
        {"contact": {"channel": "wechat", "address": CUSTOMER}, **content}
    )


def plain_request(body: bytes, token: str = kit.CONFIG.token.get_secret_value()) -> WebhookRequest:
    query = {"signature": sha1_signature(token, "1", "2"), "timestamp": "1", "nonce": "2"}
    return WebhookRequest("POST", f"{kit.WEBHOOK_URL}?{urlencode(query)}", {}, body)


async def test_signature_is_sha1_of_sorted_parts() -> None:
    # The worked example of WeChat's access guide: token "token", timestamp, nonce.
    assert sha1_signature("b", "a", "c") == sha1_signature("c", "b", "a")
    assert len(sha1_signature("token", "1", "2")) == 40


async def test_url_verification_echoes(wx: Setup) -> None:
    query = {
        "signature": sha1_signature("wechat-test-token", "9", "8"),
        "timestamp": "9",
        "nonce": "8",
        "echostr": "e42",
    }
    result = await wx.channel.receive(
        WebhookRequest("GET", f"{kit.WEBHOOK_URL}?{urlencode(query)}")
    )
    assert result.response.body == b"e42"
    query["signature"] = "0" * 40
    with pytest.raises(HandshakeError):
        await wx.channel.receive(WebhookRequest("GET", f"{kit.WEBHOOK_URL}?{urlencode(query)}"))


async def test_crypto_round_trip_and_appid_check() -> None:
    key = aes_key("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C")
    ours, theirs = MessageCrypto("wx5823bf96d3bd56c7", key), MessageCrypto("wxOTHER", key)
    encrypted = ours.encrypt(b"<xml>hi</xml>")
    assert ours.decrypt(encrypted) == b"<xml>hi</xml>"
    with pytest.raises(SignatureError, match="another appid"):
        theirs.decrypt(encrypted)
    for bad in ("not base64!", "AAAA"):
        with pytest.raises(PayloadError):
            ours.decrypt(bad)


async def test_padding_is_to_32_bytes() -> None:
    crypto = MessageCrypto("wx1", aes_key("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"))
    import base64

    for size in range(0, 70):
        assert len(base64.b64decode(crypto.encrypt(b"x" * size))) % 32 == 0


@pytest.mark.parametrize("bad_key", ["short", "!" * 43])
async def test_bad_encoding_aes_key_is_a_configuration_error(bad_key: str) -> None:
    with pytest.raises(ConfigurationError):
        WeChatChannel(
            WeChatConfig(app_id="wx1", app_secret="s", token="t", encoding_aes_key=bad_key)
        )


async def test_secure_mode_refuses_plaintext_pushes(wx: Setup) -> None:
    with pytest.raises(SignatureError, match="secure mode"):
        await wx.channel.receive(plain_request(kit.push("text", Content="x", MsgId="1")))


async def test_plain_and_compatible_modes() -> None:
    plain = WeChatChannel(WeChatConfig(app_id="wx1", app_secret="s", token="wechat-test-token"))
    result = await plain.receive(plain_request(kit.push("text", Content="plain", MsgId="1")))
    assert result.response.body == b"success"
    assert isinstance(result.events[0], MessageReceived)
    with pytest.raises(SignatureError):
        await plain.receive(plain_request(kit.push("text", Content="x", MsgId="2"), token="forged"))
    compatible = WeChatChannel(kit.CONFIG.model_copy(update={"mode": "compatible"}))
    assert (
        await compatible.receive(plain_request(kit.push("text", Content="c", MsgId="3")))
    ).events
    assert (
        await compatible.receive(kit.sign(kit.webhook(kit.push("text", Content="e", MsgId="4"))))
    ).events
    await plain.aclose()
    await compatible.aclose()


async def test_encrypted_mode_needs_a_key() -> None:
    with pytest.raises(ConfigurationError, match="needs an encoding_aes_key"):
        WeChatChannel(WeChatConfig(app_id="wx1", app_secret="s", token="t", mode="secure"))


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><xml><C>&b;</C></xml>',
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><C>&e;</C></xml>',
        b"<xml><unclosed></xml>",
        "<xml><!DOCTYPE x><C>a</C></xml>".encode("utf-16"),  # a DTD hidden in UTF-16
        b'<?xml version="1.0" encoding="ISO-8859-1"?><!DOCTYPE x><xml/>',
        b"<notxml/>",
        b"<xml><ToUserName>a</ToUserName></xml>",
    ],
)
async def test_hostile_or_malformed_xml_is_a_payload_error(wx: Setup, body: bytes) -> None:
    with pytest.raises(PayloadError):
        await wx.push(body)


async def test_passive_reply_is_encrypted_and_opens_back(wx: Setup) -> None:
    [event] = await wx.push(kit.push("text", Content="hi", MsgId="11"))
    response = wx.channel.passive_reply(event, "Hello from support")  # type: ignore[arg-type]
    assert b"<Encrypt>" in response.body and b"Hello" not in response.body
    plain = wx.channel.open_reply(response.body)
    assert b"<Content>Hello from support</Content>" in plain
    assert f"<ToUserName>{CUSTOMER}</ToUserName>".encode() in plain


async def test_window_is_48_hours_and_templates_pass_outside(wx: Setup) -> None:
    await wx.push(kit.push("text", at=int(wx.clock.now().timestamp()), Content="hi", MsgId="21"))
    wx.clock.advance(timedelta(hours=47, minutes=59))
    await wx.channel.send(to(text="still open"))
    assert wx.api.sent[-1] == {
        "touser": CUSTOMER,
        "msgtype": "text",
        "text": {"content": "still open"},
    }
    wx.clock.advance(timedelta(minutes=2))
    with pytest.raises(PolicyRefusedError) as refused:
        await wx.channel.send(to(text="too late"))
    assert refused.value.decision.reason is RefusalReason.WINDOW_CLOSED
    receipt = await wx.channel.send(to(template=Template(name="tpl", named_parameters={"k": "v"})))
    assert receipt.message_id
    sent = wx.api.templates[-1]
    assert sent.pop("client_msg_id")  # a new one per send
    assert sent == {"touser": CUSTOMER, "template_id": "tpl", "data": {"k": {"value": "v"}}}


async def test_a_template_whose_answer_was_lost_is_sent_once_on_retry(wx: Setup) -> None:
    await wx.push(kit.push("text", at=int(wx.clock.now().timestamp()), Content="hi", MsgId="31"))
    template = to(template=Template(name="tpl", named_parameters={"k": "v"}))

    lost: list[httpx.Request] = []

    def lose_the_first_answer(request: httpx.Request) -> httpx.Response:
        answer = wx.api(request)
        if request.url.path.endswith("/template/send") and not lost:
            lost.append(request)
            raise httpx.ReadTimeout("timed out", request=request)
        return answer

    wx.router.routes[0].side_effect = lose_the_first_answer
    with pytest.raises(DeliveryUnknownError) as raised:
        await wx.channel.send(template)
    key = raised.value.idempotency_key
    assert key and wx.api.templates[0]["client_msg_id"] == key
    receipt = await wx.channel.send(template, idempotency_key=key)
    assert len(wx.api.templates) == 1 and receipt.message_id == "200001"
    with pytest.raises(UnsupportedMessageError, match="templates only"):
        await wx.channel.send(to(text="hi"), idempotency_key=key)


async def test_a_template_answered_with_an_unreadable_200_keeps_its_key(wx: Setup) -> None:
    await wx.push(kit.push("text", at=int(wx.clock.now().timestamp()), Content="hi", MsgId="32"))
    unreadable = httpx.Response(200, text="<html>", headers={"content-type": "text/plain"})
    wx.api.fail_next(unreadable, path=".*/template/send")
    with pytest.raises(DeliveryUnknownError) as raised:
        await wx.channel.send(to(template=Template(name="tpl")))
    sent = json.loads(wx.api.requests[-1].content)["client_msg_id"]
    assert raised.value.idempotency_key == sent


async def test_menu_click_opens_the_window(wx: Setup) -> None:
    await wx.push(
        kit.push("event", at=int(wx.clock.now().timestamp()), Event="CLICK", EventKey="HELP")
    )
    await wx.channel.send(to(text="How can we help?"))


async def test_stranger_and_unsubscribed_users_are_refused(wx: Setup) -> None:
    with pytest.raises(PolicyRefusedError) as refused:
        await wx.channel.send(to(template=Template(name="tpl")))
    assert refused.value.decision.reason is RefusalReason.NOT_A_FOLLOWER
    await wx.push(kit.event("subscribe"))
    await wx.push(kit.push("event", at=kit._T0 + 5, Event="unsubscribe"))
    with pytest.raises(PolicyRefusedError) as refused:
        await wx.channel.send(to(template=Template(name="tpl")))
    assert refused.value.decision.reason is RefusalReason.UNFOLLOWED
    assert not wx.router.calls


async def test_link_card_and_media_messages(wx: Setup) -> None:
    await wx.push(kit.push("text", at=int(wx.clock.now().timestamp()), Content="hi", MsgId="31"))
    await wx.channel.send(
        to(card=Card(title="Order #42", url="https://shop.example/42", description="Shipped"))
    )
    assert wx.api.sent[-1]["news"] == {
        "articles": [
            {"title": "Order #42", "description": "Shipped", "url": "https://shop.example/42"}
        ]
    }
    await wx.channel.send(
        to(media=[Media(kind=MediaKind.VOICE, mime_type="audio/amr", data=b"#!AMR")])
    )
    sent = wx.api.sent[-1]
    assert sent["msgtype"] == "voice"
    assert wx.api.media[sent["voice"]["media_id"]] == b"#!AMR"  # type: ignore[index]


async def test_token_is_fetched_once_for_concurrent_callers(wx: Setup) -> None:
    await wx.push(kit.push("text", at=int(wx.clock.now().timestamp()), Content="hi", MsgId="41"))
    async with anyio.create_task_group() as group:
        for i in range(10):
            group.start_soon(wx.channel.send, to(text=f"m{i}"))
    assert wx.api.tokens_issued == 1
    assert len(wx.api.sent) == 10


async def test_token_is_refreshed_before_expiry(wx: Setup) -> None:
    await wx.channel.tokens.get()
    wx.clock.advance(timedelta(seconds=7200 - 299))
    await wx.channel.tokens.get()
    assert wx.api.tokens_issued == 2


async def test_invalid_token_is_refreshed_once_and_retried(wx: Setup) -> None:
    await wx.channel.tokens.get()
    wx.api.expire_tokens()
    await wx.push(kit.event("subscribe"))
    await wx.channel.send(to(template=Template(name="tpl")))
    assert wx.api.tokens_issued == 2
    for _ in range(2):
        wx.api.fail_next(wechat_error(40001, "invalid credential"), path="/cgi-bin/message/.*")
    with pytest.raises(ProviderAuthError):
        await wx.channel.send(to(template=Template(name="tpl")))


@pytest.mark.parametrize(
    ("errcode", "error"),
    [
        (45015, ProviderPolicyError),
        (45047, ProviderPolicyError),
        (43004, ProviderPolicyError),
        (45009, RateLimitedError),
        (40125, ProviderAuthError),
    ],
)
async def test_errcodes_are_typed(wx: Setup, errcode: int, error: type[Exception]) -> None:
    await wx.push(kit.event("subscribe"))
    await wx.channel.tokens.get()
    wx.api.fail_next(wechat_error(errcode, "boom"), path="/cgi-bin/message/.*")
    with pytest.raises(error, match=str(errcode)):
        await wx.channel.send(to(template=Template(name="tpl")))


async def test_retried_push_is_a_duplicate(wx: Setup) -> None:
    body = kit.event("subscribe")
    first = await wx.channel.receive(kit.sign(kit.webhook(body)))
    second = await wx.channel.receive(kit.sign(kit.webhook(body)))
    assert first.events and not second.events and second.duplicates


async def test_media_download(wx: Setup) -> None:
    uploaded = await wx.channel.upload_media(
        Media(kind=MediaKind.IMAGE, data=b"jpeg", mime_type="image/jpeg")
    )
    assert await wx.channel.download_media(uploaded) == b"jpeg"


_PUSHES = [parse_xml(sample.body) for sample in kit.SAMPLES]


@settings(max_examples=300, deadline=None)
@given(push=broken(_PUSHES))
def test_a_broken_push_is_a_payload_error_or_kept_as_unknown(push: dict[str, Any]) -> None:
    try:
        event = parse_push(push, Inbound(WeChatChannel.name, FakeClock().now()))
    except PayloadError:
        return
    assert event.raw == push
