"""Messenger specifics beyond the conformance suite: handshake, mapping details, echoes,
the 24-hour window and the HUMAN_AGENT tag, Send API bodies, limits, uploads and
Graph error mapping. The Instagram flavour's differences: tests/test_instagram.py."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given, settings
from pydantic import SecretStr

from chatbridge import (
    Button,
    Card,
    FakeClock,
    HandshakeError,
    Interactive,
    ListRow,
    ListSection,
    MediaKind,
    Message,
    MessageInvalidError,
    PayloadError,
    PolicyRefusedError,
    ProviderAuthError,
    ProviderError,
    ProviderPolicyError,
    ProviderUnavailableError,
    RateLimitedError,
    Reaction,
    SignatureError,
    Template,
    UnsupportedMessageError,
    UnsupportedRequestError,
    WebhookRequest,
)
from chatbridge.http import RetryPolicy
from chatbridge.messenger import MessengerChannel, kit
from chatbridge.messenger.fake import FakeMessengerAPI
from chatbridge.models import ChannelEvent, Media, MessageReceived, StatusUpdate, UnknownEvent
from chatbridge.plugin import ChannelKit
from chatbridge.plugin.graph import error_response as graph_error
from chatbridge.policy import RefusalReason, RemedyKind
from tests.mutations import broken

pytestmark = pytest.mark.anyio
CUSTOMER = kit.CUSTOMER
BODIES = kit.BODIES


@dataclass
class Setup:
    """A Messenger Platform channel on its kit's fake, with a fake clock."""

    kit: ChannelKit[MessengerChannel]
    channel: MessengerChannel
    api: FakeMessengerAPI
    clock: FakeClock
    router: respx.MockRouter

    async def receive(self, body: bytes) -> list[Any]:
        result = await self.channel.receive(self.kit.sign(self.kit.webhook(body), None))
        return list(result.events)

    async def open_window(self) -> None:
        for body in self.kit.open_conversation(self.kit.customer, self.clock.now()):
            await self.receive(body)

    def last_sent(self) -> dict[str, Any]:
        return self.api.sent[-1]


@asynccontextmanager
async def running(channel_kit: ChannelKit[MessengerChannel]) -> AsyncIterator[Setup]:
    """``channel_kit``'s channel talking to a fresh fake through respx."""
    api, clock = channel_kit.fake_api(), FakeClock()
    assert isinstance(api, FakeMessengerAPI)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        for host in api.hosts:
            router.route(host=host).mock(side_effect=api)
        channel = channel_kit.channel(channel_kit.config, clock=clock, retry=RetryPolicy(backoff=0))
        yield Setup(channel_kit, channel, api, clock, router)
        await channel.aclose()


@pytest.fixture
async def fb() -> AsyncIterator[Setup]:
    async with running(kit.kit) as setup:
        yield setup


def to(**content: object) -> Message:
    return Message.model_validate(
        {"contact": {"channel": "messenger", "address": CUSTOMER}, **content}
    )


def human_agent(**content: object) -> Message:
    return to(tag="HUMAN_AGENT", **content)


# -- webhooks ----------------------------------------------------------------------------


def handshake(token: str, mode: str = "subscribe") -> WebhookRequest:
    query = f"hub.mode={mode}&hub.verify_token={token}&hub.challenge=1158201444"
    return WebhookRequest("GET", f"https://support.example.com/webhooks/messenger?{query}")


async def test_handshake_echoes_the_challenge(fb: Setup) -> None:
    result = await fb.channel.receive(handshake("messenger-test-verify-token"))
    assert (result.response.status, result.response.body) == (200, b"1158201444")


@pytest.mark.parametrize(
    ("token", "mode"), [("wrong", "subscribe"), ("messenger-test-verify-token", "unsubscribe")]
)
async def test_bad_handshake_is_refused(fb: Setup, token: str, mode: str) -> None:
    with pytest.raises(HandshakeError):
        await fb.channel.receive(handshake(token, mode))


async def test_other_methods_are_refused(fb: Setup) -> None:
    with pytest.raises(UnsupportedRequestError):
        await fb.channel.receive(WebhookRequest("PUT", "https://support.example.com/x"))


async def test_signature_is_checked_before_the_body_is_parsed(fb: Setup) -> None:
    request = kit.kit.sign(kit.kit.webhook(b"not json"), "forged")
    with pytest.raises(SignatureError):
        await fb.channel.receive(request)
    with pytest.raises(PayloadError):
        await fb.channel.receive(kit.kit.sign(kit.kit.webhook(b"not json"), None))


@pytest.mark.parametrize(
    "body",
    [
        b'{"object": "instagram", "entry": []}',
        b'{"object": "page", "entry": [{"messaging": "not a list"}]}',
        b'{"object": "page"}',
    ],
)
async def test_a_malformed_or_foreign_envelope_is_a_payload_error(fb: Setup, body: bytes) -> None:
    with pytest.raises(PayloadError):
        await fb.receive(body)


# -- mapping -----------------------------------------------------------------------------


async def test_text_message_maps_ids_time_and_contact(fb: Setup) -> None:
    [event] = await fb.receive(BODIES.message("m_1", text="hi", at=kit.T0 + 1500))
    assert isinstance(event, MessageReceived)
    assert (event.event_id, event.message.id) == ("m_1", "m_1")
    assert event.contact == fb.channel.identity(CUSTOMER)
    assert event.timestamp.timestamp() == (kit.T0 + 1500) / 1000


async def test_string_timestamps_are_accepted(fb: Setup) -> None:
    [event] = await fb.receive(BODIES.message("m_1", text="hi", at=str(kit.T0)))  # type: ignore[arg-type]
    assert isinstance(event, MessageReceived)
    assert event.timestamp.timestamp() == kit.T0 / 1000


async def test_several_attachments_are_all_kept(fb: Setup) -> None:
    attachments = [
        {"type": "image", "payload": {"url": "https://cdn.example/1.png"}},
        {"type": "video", "payload": {"url": "https://cdn.example/2.mp4"}},
        {"type": "audio", "payload": {"url": "https://cdn.example/3.mp4"}},
    ]
    [event] = await fb.receive(BODIES.message("m_media", attachments=attachments))
    media = event.message.media
    assert [m.kind for m in media] == [MediaKind.IMAGE, MediaKind.VIDEO, MediaKind.AUDIO]


async def test_postback_without_mid_gets_a_stable_id(fb: Setup) -> None:
    body = BODIES.notification(BODIES.item(postback={"title": "Menu", "payload": "MENU"}))
    [first] = await fb.receive(body)
    assert first.event_id.startswith("postback:")
    again = await fb.channel.receive(kit.kit.sign(kit.kit.webhook(body), None))
    assert [e.event_id for e in again.duplicates] == [first.event_id]


async def test_echo_is_typed_and_does_not_open_the_window(fb: Setup) -> None:
    [event] = await fb.receive(BODIES.echo("m_echo", "sent from the inbox"))
    assert isinstance(event, ChannelEvent)
    assert event.name == "echo" and event.event_id == "echo:m_echo"
    assert event.contact == fb.channel.identity(CUSTOMER)
    assert event.data == {
        "mid": "m_echo",
        "app_id": 1517776481860111,
        "text": "sent from the inbox",
    }
    with pytest.raises(PolicyRefusedError) as refused:
        await fb.channel.send(to(text="hi"))
    assert refused.value.decision.reason is RefusalReason.WINDOW_NEVER_OPENED


async def test_reads_and_deliveries_have_stable_ids(fb: Setup) -> None:
    read = BODIES.notification(BODIES.item(read={"watermark": 5}))
    delivery = BODIES.notification(BODIES.item(delivery={"mids": ["m_a"], "watermark": 6}))
    [seen] = await fb.receive(read)
    [delivered] = await fb.receive(delivery)
    assert (seen.event_id, delivered.event_id) == (f"read:{CUSTOMER}:5", "m_a:delivered")


async def test_standby_and_unknown_items_are_kept_as_unknown(fb: Setup) -> None:
    entry = {"id": "1", "time": 1, "standby": [BODIES.item(message={"mid": "m_s", "text": "x"})]}
    body = json.dumps({"object": "page", "entry": [entry]}).encode()
    [standby] = await fb.receive(body)
    assert isinstance(standby, UnknownEvent) and standby.name == "standby" and standby.raw
    [unknown] = await fb.receive(kit.kit.unknown_body)
    assert isinstance(unknown, UnknownEvent) and unknown.name == "game_play"


def _items() -> list[dict[str, Any]]:
    return [
        item for s in kit.SAMPLES for e in json.loads(s.body)["entry"] for item in e["messaging"]
    ]


@settings(max_examples=200, deadline=None)
@given(item=broken(_items()))
def test_a_broken_item_is_kept_as_unknown_and_spares_its_batch(item: dict[str, Any]) -> None:
    from chatbridge.messenger.inbound import parse_notification
    from chatbridge.plugin import Inbound

    good = BODIES.item(message={"mid": "m_ok", "text": "fine"})
    body = BODIES.notification(item, good)
    events = parse_notification(body, Inbound("messenger", FakeClock().now()), "page")
    assert isinstance(events[-1], MessageReceived) and events[-1].event_id == "m_ok"
    assert all(
        isinstance(e, MessageReceived | StatusUpdate | ChannelEvent | UnknownEvent) for e in events
    )


# -- policy ------------------------------------------------------------------------------


async def test_window_refusal_offers_the_message_tags(fb: Setup) -> None:
    await fb.open_window()
    fb.clock.advance(timedelta(hours=25))
    with pytest.raises(PolicyRefusedError) as refused:
        await fb.channel.send(to(text="late"))
    decision = refused.value.decision
    assert decision.reason is RefusalReason.WINDOW_CLOSED
    tags = [r for r in decision.remedies if r.kind is RemedyKind.USE_TAG]
    assert "HUMAN_AGENT" in tags[0].description
    assert tags[0].until == fb.clock.now() - timedelta(hours=25) + timedelta(days=7)
    assert "ACCOUNT_UPDATE" in tags[1].description
    assert not fb.router.calls


async def test_human_agent_tag_is_allowed_for_seven_days_then_refused(fb: Setup) -> None:
    await fb.open_window()
    fb.clock.advance(timedelta(days=6, hours=23))
    await fb.channel.send(human_agent(text="Sorry for the wait"))
    assert fb.last_sent() == {
        "recipient": {"id": CUSTOMER},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
        "message": {"text": "Sorry for the wait"},
    }
    fb.clock.advance(timedelta(hours=2))
    calls = len(fb.router.calls)
    with pytest.raises(PolicyRefusedError) as refused:
        await fb.channel.send(human_agent(text="too late"))
    assert refused.value.decision.reason is RefusalReason.WINDOW_CLOSED
    assert len(fb.router.calls) == calls
    with pytest.raises(PolicyRefusedError) as refused:
        await fb.channel.send(to(text="also too late"))
    remedies = " ".join(r.description for r in refused.value.decision.remedies)
    assert "HUMAN_AGENT" not in remedies and "ACCOUNT_UPDATE" in remedies


async def test_human_agent_needs_a_customer_message(fb: Setup) -> None:
    with pytest.raises(PolicyRefusedError) as refused:
        await fb.channel.send(human_agent(text="hello?"))
    assert refused.value.decision.reason is RefusalReason.WINDOW_NEVER_OPENED


async def test_an_untimed_tag_is_allowed_outside_the_window(fb: Setup) -> None:
    await fb.open_window()
    fb.clock.advance(timedelta(days=30))
    await fb.channel.send(to(text="Your order shipped", tag="POST_PURCHASE_UPDATE"))
    assert fb.last_sent()["tag"] == "POST_PURCHASE_UPDATE"


async def test_the_provider_refuses_untagged_sends_outside_its_window(fb: Setup) -> None:
    fb.api.window = timedelta(hours=24)
    await fb.open_window()  # chatbridge's window is open, the provider's is not
    with pytest.raises(ProviderPolicyError) as refused:
        await fb.channel.send(to(text="hi"))
    assert refused.value.code == 10


# -- sending -----------------------------------------------------------------------------


async def test_text_body_and_receipt(fb: Setup) -> None:
    await fb.open_window()
    receipt = await fb.channel.send(to(text="Yes, in red"))
    assert receipt.message_id and receipt.message_id.startswith("m_FAKE")
    assert fb.last_sent() == {
        "recipient": {"id": CUSTOMER},
        "messaging_type": "RESPONSE",
        "message": {"text": "Yes, in red"},
    }
    request = fb.api.requests[-1]
    assert "access_token" not in str(request.url)
    assert json.loads(request.content)["access_token"] == kit.CONFIG.access_token.get_secret_value()


async def test_quick_replies_button_template_and_generic_template(fb: Setup) -> None:
    await fb.open_window()
    buttons = [Button(id="RED", title="Red"), Button(id="BLUE", title="Blue")]
    await fb.channel.send(to(interactive=Interactive(body="Pick a color", buttons=buttons)))
    assert fb.last_sent()["message"] == {
        "text": "Pick a color",
        "quick_replies": [
            {"content_type": "text", "title": "Red", "payload": "RED"},
            {"content_type": "text", "title": "Blue", "payload": "BLUE"},
        ],
    }
    rows = [ListRow(id="YES", title="Yes"), ListRow(id="NO", title="No")]
    await fb.channel.send(
        to(interactive=Interactive(body="Confirm?", sections=[ListSection(rows=rows)]))
    )
    assert fb.last_sent()["message"]["attachment"] == {
        "type": "template",
        "payload": {
            "template_type": "button",
            "text": "Confirm?",
            "buttons": [
                {"type": "postback", "title": "Yes", "payload": "YES"},
                {"type": "postback", "title": "No", "payload": "NO"},
            ],
        },
    }
    card = Card(
        title="Shirt", url="https://shop.example/s", description="Red", image_url="https://i/s.png"
    )
    await fb.channel.send(to(card=card))
    assert fb.last_sent()["message"]["attachment"]["payload"] == {
        "template_type": "generic",
        "elements": [
            {
                "title": "Shirt",
                "default_action": {"type": "web_url", "url": "https://shop.example/s"},
                "subtitle": "Red",
                "image_url": "https://i/s.png",
            }
        ],
    }


async def test_media_by_url_and_by_upload(fb: Setup) -> None:
    await fb.open_window()
    await fb.channel.send(to(media=[Media(kind=MediaKind.VIDEO, url="https://cdn.example/v.mp4")]))
    assert fb.last_sent()["message"] == {
        "attachment": {"type": "video", "payload": {"url": "https://cdn.example/v.mp4"}}
    }
    pdf = Media(
        kind=MediaKind.DOCUMENT, mime_type="application/pdf", data=b"%PDF", filename="a.pdf"
    )
    await fb.channel.send(to(media=[pdf]))
    [attachment_id] = fb.api.uploads
    assert fb.last_sent()["message"] == {
        "attachment": {"type": "file", "payload": {"attachment_id": attachment_id}}
    }


async def test_upload_is_multipart_with_a_reusable_attachment(fb: Setup) -> None:
    uploaded = await fb.channel.upload_media(kit.kit.media)  # type: ignore[arg-type]
    request = fb.api.requests[-1]
    assert request.url.path == f"/v25.0/{kit.CONFIG.page_id}/message_attachments"
    from chatbridge.plugin import parse_multipart

    parts = parse_multipart(request)
    assert json.loads(parts["message"].data) == {
        "attachment": {"type": "image", "payload": {"is_reusable": True}}
    }
    assert parts["filedata"].data == b"\x89PNG fake image"
    assert "platform" not in parts
    assert uploaded.provider_id in fb.api.uploads


async def test_inbound_attachment_downloads_without_the_token(fb: Setup) -> None:
    uploaded = await fb.channel.upload_media(kit.kit.media)  # type: ignore[arg-type]
    assert uploaded.provider_id
    url = fb.api.cdn_url(uploaded.provider_id)
    attachments = [{"type": "image", "payload": {"url": url}}]
    [event] = await fb.receive(BODIES.message("m_img", attachments=attachments))
    assert await fb.channel.download_media(event.message.media[0]) == b"\x89PNG fake image"
    download = fb.api.requests[-1]
    assert "access_token" not in str(download.url) and not download.content
    assert "authorization" not in download.headers


async def test_reactions_are_sender_actions(fb: Setup) -> None:
    await fb.open_window()
    receipt = await fb.channel.send(to(reaction=Reaction(message_id="m_in", emoji="😊")))
    assert receipt.message_id is None
    body = json.loads(fb.api.requests[-1].content)
    assert (body["sender_action"], body["payload"]) == (
        "react",
        {"message_id": "m_in", "reaction": "😊"},
    )
    await fb.channel.send(to(reaction=Reaction(message_id="m_in", emoji="")))
    body = json.loads(fb.api.requests[-1].content)
    assert (body["sender_action"], body["payload"]) == ("unreact", {"message_id": "m_in"})


@pytest.mark.parametrize(
    ("content", "error", "match"),
    [
        ({"text": "x" * 2000}, MessageInvalidError, "1999 characters"),
        ({"text": ""}, MessageInvalidError, "needs text"),
        (
            {
                "interactive": Interactive(
                    body="b", buttons=[Button(id=str(i), title="t") for i in range(14)]
                )
            },
            MessageInvalidError,
            "1 to 13 quick replies",
        ),
        (
            {"interactive": Interactive(body="b", buttons=[Button(id="1", title="x" * 21)])},
            MessageInvalidError,
            "20 characters",
        ),
        (
            {
                "interactive": Interactive(
                    body="b",
                    sections=[ListSection(rows=[ListRow(id=str(i), title="t") for i in range(4)])],
                )
            },
            MessageInvalidError,
            "1 to 3 buttons",
        ),
        (
            {
                "interactive": Interactive(
                    body="x" * 641, sections=[ListSection(rows=[ListRow(id="1", title="t")])]
                )
            },
            MessageInvalidError,
            "640 characters",
        ),
        ({"card": Card(title="x" * 81, url="https://e.x")}, MessageInvalidError, "80 characters"),
        (
            {"media": [Media(kind=MediaKind.IMAGE)]},
            MessageInvalidError,
            "provider_id, a url or data",
        ),
        (
            {"media": [Media(kind=MediaKind.IMAGE, url="https://e.x/a.png", caption="c")]},
            MessageInvalidError,
            "no caption",
        ),
        (
            {"media": [Media(kind=MediaKind.STICKER, url="https://e.x/s.webp")]},
            UnsupportedMessageError,
            "sticker",
        ),
        (
            {"text": "t", "card": Card(title="t", url="https://e.x")},
            MessageInvalidError,
            "separate",
        ),
        ({"text": "t", "reply_to": "m_1"}, UnsupportedMessageError, "reply_to"),
        (
            {"text": "t", "tag": "PROMO"},
            MessageInvalidError,
            "not a message tag of messenger",
        ),
        (
            {"text": "t", "template": Template(name="HUMAN_AGENT")},
            MessageInvalidError,
            "has no templates",
        ),
    ],
)
async def test_limits_are_checked_before_any_call(
    fb: Setup, content: dict[str, object], error: type[Exception], match: str
) -> None:
    await fb.open_window()
    calls = len(fb.router.calls)
    with pytest.raises(error, match=match):
        await fb.channel.send(to(**content))
    assert len(fb.router.calls) == calls


async def test_oversized_upload_is_refused_locally(fb: Setup) -> None:
    big = Media(kind=MediaKind.VIDEO, mime_type="video/mp4", data=b"x" * (25 * 1024 * 1024 + 1))
    with pytest.raises(MessageInvalidError, match="video uploads are limited"):
        await fb.channel.upload_media(big)
    assert not fb.router.calls


# -- provider errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "subcode", "error"),
    [
        (400, 10, 2018278, ProviderPolicyError),
        (400, 551, None, ProviderPolicyError),
        (400, 551, 1545041, ProviderPolicyError),
        (403, 230, None, ProviderPolicyError),
        (400, 368, None, ProviderPolicyError),
        (400, 10, None, ProviderAuthError),
        (401, 190, None, ProviderAuthError),
        (403, 200, None, ProviderAuthError),
        (400, 4, None, RateLimitedError),
        (400, 613, None, RateLimitedError),
        (500, 2, None, ProviderUnavailableError),
        (400, 100, 2018001, ProviderError),
    ],
)
async def test_graph_errors_are_typed(
    fb: Setup, status: int, code: int, subcode: int | None, error: type[ProviderError]
) -> None:
    await fb.open_window()
    fb.api.fail_next(graph_error(status, code, f"error {code}", subcode))
    with pytest.raises(error) as raised:
        await fb.channel.send(to(text="hi"))
    assert type(raised.value) is error
    assert raised.value.code == code
    assert f"error {code}" in str(raised.value)


async def test_a_wrong_token_is_an_auth_error_without_the_token(fb: Setup) -> None:
    config = kit.CONFIG.model_copy(update={"access_token": SecretStr("EAAB-not-the-token")})
    channel = MessengerChannel(config, clock=fb.clock, store=fb.channel.store)
    await fb.open_window()
    with pytest.raises(ProviderAuthError) as raised:
        await channel.send(to(text="hi"))
    assert "EAAB" not in str(raised.value)
    await channel.aclose()


async def test_an_unexpected_success_body_is_delivery_unknown(fb: Setup) -> None:
    await fb.open_window()
    fb.api.fail_next(httpx.Response(200, text="<html>"))
    with pytest.raises(ProviderUnavailableError, match="unexpected send"):
        await fb.channel.send(to(text="hi"))


def test_repr_names_the_page_only() -> None:
    channel = MessengerChannel(kit.CONFIG)
    assert repr(channel) == f"MessengerChannel(page_id='{kit.CONFIG.page_id}')"
