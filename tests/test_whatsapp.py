"""WhatsApp specifics beyond the conformance suite: handshake, wire bodies, limits,
error mapping, retries and media checks."""

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given, settings

from chatbridge import (
    Button,
    FakeClock,
    HandshakeError,
    Interactive,
    ListRow,
    ListSection,
    Location,
    MediaError,
    MediaKind,
    Message,
    MessageInvalidError,
    PayloadError,
    PolicyRefusedError,
    ProviderAuthError,
    ProviderPolicyError,
    ProviderUnavailableError,
    RateLimitedError,
    Reaction,
    Template,
    UnsupportedRequestError,
    WebhookRequest,
)
from chatbridge.http import RetryPolicy
from chatbridge.models import Media, MessageReceived, StatusUpdate, UnknownEvent
from chatbridge.plugin import Inbound
from chatbridge.plugin.graph import error_response as graph_error
from chatbridge.whatsapp import WhatsAppChannel, kit
from chatbridge.whatsapp.fake import FakeWhatsAppAPI
from chatbridge.whatsapp.inbound import parse_notification
from tests.mutations import broken

pytestmark = pytest.mark.anyio
CUSTOMER = kit.CUSTOMER


@dataclass
class Setup:
    channel: WhatsAppChannel
    api: FakeWhatsAppAPI
    clock: FakeClock
    router: respx.MockRouter

    async def open_window(self) -> None:
        for body in kit.open_conversation(CUSTOMER, self.clock.now()):
            await self.channel.receive(kit.sign(kit.webhook(body)))

    def last_sent(self) -> dict[str, object]:
        return self.api.sent[-1]


@pytest.fixture
async def wa() -> AsyncIterator[Setup]:
    api, clock = FakeWhatsAppAPI(kit.CONFIG), FakeClock()
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.route(host=api.hosts[0]).mock(side_effect=api)
        channel = WhatsAppChannel(kit.CONFIG, clock=clock, retry=RetryPolicy(backoff=0))
        yield Setup(channel, api, clock, router)
        await channel.aclose()


def to(**content: object) -> Message:
    return Message.model_validate(
        {"contact": {"channel": "whatsapp", "address": CUSTOMER}, **content}
    )


# -- handshake ---------------------------------------------------------------------------


def handshake(token: str, mode: str = "subscribe") -> WebhookRequest:
    query = f"hub.mode={mode}&hub.verify_token={token}&hub.challenge=1158201444"
    return WebhookRequest("GET", f"{kit.WEBHOOK_URL}?{query}")


async def test_handshake_echoes_the_challenge(wa: Setup) -> None:
    result = await wa.channel.receive(handshake("whatsapp-test-verify-token"))
    assert result.response.body == b"1158201444" and result.response.status == 200


@pytest.mark.parametrize(
    ("token", "mode"), [("wrong", "subscribe"), ("whatsapp-test-verify-token", "x")]
)
async def test_bad_handshake_is_refused(wa: Setup, token: str, mode: str) -> None:
    with pytest.raises(HandshakeError) as refused:
        await wa.channel.receive(handshake(token, mode))
    assert refused.value.status == 403


async def test_other_methods_are_refused(wa: Setup) -> None:
    with pytest.raises(UnsupportedRequestError):
        await wa.channel.receive(WebhookRequest("PUT", kit.WEBHOOK_URL))


# -- sending -----------------------------------------------------------------------------


async def test_text_reply_in_context(wa: Setup) -> None:
    await wa.open_window()
    receipt = await wa.channel.send(to(text="Yes, in red", reply_to="wamid.IN"))
    assert receipt.message_id and receipt.message_id.startswith("wamid.FAKE")
    assert wa.last_sent() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CUSTOMER,
        "context": {"message_id": "wamid.IN"},
        "type": "text",
        "text": {"body": "Yes, in red", "preview_url": False},
    }


async def test_template_with_positional_and_named_parameters(wa: Setup) -> None:
    template = Template(
        name="order_update", language="en_US", parameters=["42"], named_parameters={"eta": "5pm"}
    )
    await wa.channel.send(to(template=template))
    assert wa.last_sent()["template"] == {
        "name": "order_update",
        "language": {"code": "en_US"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "42"},
                    {"type": "text", "parameter_name": "eta", "text": "5pm"},
                ],
            }
        ],
    }


async def test_buttons_list_location_and_reaction_bodies(wa: Setup) -> None:
    await wa.open_window()
    await wa.channel.send(
        to(interactive=Interactive(body="Pick", buttons=[Button(id="y", title="Yes")]))
    )
    assert wa.last_sent()["interactive"] == {
        "body": {"text": "Pick"},
        "type": "button",
        "action": {"buttons": [{"type": "reply", "reply": {"id": "y", "title": "Yes"}}]},
    }
    sections = [ListSection(title="Sizes", rows=[ListRow(id="m", title="M", description="medium")])]
    await wa.channel.send(
        to(interactive=Interactive(body="Size?", sections=sections, button_label="Sizes"))
    )
    action = wa.last_sent()["interactive"]["action"]  # type: ignore[index]
    assert action == {
        "button": "Sizes",
        "sections": [
            {"title": "Sizes", "rows": [{"id": "m", "title": "M", "description": "medium"}]}
        ],
    }
    await wa.channel.send(to(location=Location(latitude=1.5, longitude=2.5, name="Shop")))
    assert wa.last_sent()["location"] == {"latitude": 1.5, "longitude": 2.5, "name": "Shop"}
    await wa.channel.send(to(reaction=Reaction(message_id="wamid.IN", emoji="👍")))
    assert wa.last_sent()["type"] == "reaction"


async def test_media_bytes_are_uploaded_then_sent_by_id(wa: Setup) -> None:
    await wa.open_window()
    media = Media(
        kind=MediaKind.DOCUMENT, mime_type="application/pdf", data=b"%PDF", filename="a.pdf"
    )
    await wa.channel.send(to(media=[media.model_copy(update={"caption": "invoice"})]))
    sent = wa.last_sent()
    assert sent["type"] == "document"
    assert sent["document"] == {
        "id": next(iter(wa.api.media)),
        "caption": "invoice",
        "filename": "a.pdf",
    }


#: Every kind the Cloud API sends, and what it adds to the media object (Meta, "Audio
#: messages": ``voice``; captions only on image, video and document).
KINDS = [
    (MediaKind.IMAGE, "image/jpeg", "image", {"caption": "c"}),
    (MediaKind.VIDEO, "video/mp4", "video", {"caption": "c"}),
    (MediaKind.AUDIO, "audio/mpeg", "audio", {}),
    (MediaKind.VOICE, "audio/ogg", "audio", {"voice": True}),
    (MediaKind.DOCUMENT, "application/pdf", "document", {"caption": "c"}),
    (MediaKind.STICKER, "image/webp", "sticker", {}),
]


@pytest.mark.parametrize(("kind", "mime_type", "wire", "extra"), KINDS)
@pytest.mark.parametrize("by", ["link", "id"])
async def test_every_media_kind_is_sent_by_link_or_by_id(
    wa: Setup, kind: MediaKind, mime_type: str, wire: str, extra: dict[str, object], by: str
) -> None:
    await wa.open_window()
    if by == "id":
        uploaded = await wa.channel.upload_media(Media(kind=kind, mime_type=mime_type, data=b"x"))
        media = Media(kind=kind, provider_id=uploaded.provider_id, caption="c")
        reference = uploaded.provider_id
    else:
        reference = f"https://cdn.example.com/{wire}"
        media = Media(kind=kind, url=reference, caption="c")
    receipt = await wa.channel.send(to(media=[media]))  # the fake accepted it
    assert receipt.message_id and wa.last_sent()["type"] == wire
    assert wa.last_sent()[wire] == {by: reference, **extra}


async def test_a_media_link_is_http_or_https(wa: Setup) -> None:
    await wa.open_window()
    with pytest.raises(MessageInvalidError, match="http or https"):
        await wa.channel.send(to(media=[Media(kind=MediaKind.IMAGE, url="ftp://a.example/a")]))
    upper = "HTTPS://CDN.example.com/a.jpg"  # a URL scheme is case-insensitive
    assert (await wa.channel.send(to(media=[Media(kind=MediaKind.IMAGE, url=upper)]))).message_id
    assert wa.last_sent()["image"] == {"link": upper}
    body = {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "image"}
    request = httpx.Request(
        "POST",
        f"https://graph.facebook.com/v21.0/{kit.CONFIG.phone_number_id}/messages",
        json={**body, "image": {"link": "ftp://a.example/a"}},
        headers={"Authorization": f"Bearer {kit.CONFIG.access_token.get_secret_value()}"},
    )
    assert wa.api(request).json()["error"]["code"] == 100


@pytest.mark.parametrize("mime_type", ["audio/ogg", "audio/ogg; codecs=opus", "AUDIO/OGG"])
async def test_a_voice_note_is_ogg_opus(wa: Setup, mime_type: str) -> None:
    await wa.open_window()
    voice = Media(kind=MediaKind.VOICE, mime_type=mime_type, data=b"OggS")
    await wa.channel.send(to(media=[voice]))  # uploaded, then sent by id
    assert wa.last_sent()["audio"] == {"id": next(iter(wa.api.media)), "voice": True}


@pytest.mark.parametrize("mime_type", ["audio/mpeg", "audio/ogg; codecs=vorbis", "audio/aac"])
async def test_another_audio_type_is_no_voice_note(wa: Setup, mime_type: str) -> None:
    """Meta, "Audio messages": voice messages are OGG files with the OPUS codec."""
    await wa.open_window()
    requests = len(wa.api.requests)
    voice = Media(kind=MediaKind.VOICE, mime_type=mime_type, data=b"ID3")
    with pytest.raises(MessageInvalidError, match="OGG/OPUS"):
        await wa.channel.send(to(media=[voice]))
    assert len(wa.api.requests) == requests  # refused before the upload
    audio = voice.model_copy(update={"kind": MediaKind.AUDIO})
    await wa.channel.send(to(media=[audio]))
    assert "voice" not in wa.last_sent()["audio"]


async def test_mark_read_needs_no_window(wa: Setup) -> None:
    await wa.channel.mark_read("wamid.IN")
    assert json.loads(wa.api.requests[-1].content) == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.IN",
    }


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ({"text": "x" * 4097}, "4096 characters"),
        ({"text": ""}, "non-empty"),
        (
            {
                "interactive": Interactive(
                    body="b", buttons=[Button(id=str(i), title="t") for i in range(4)]
                )
            },
            "1 to 3 reply buttons",
        ),
        (
            {"interactive": Interactive(body="b", buttons=[Button(id="1", title="x" * 21)])},
            "20 characters",
        ),
        (
            {
                "interactive": Interactive(
                    body="b", sections=[ListSection(rows=[ListRow(id="1", title="t")])]
                )
            },
            "button_label",
        ),
        ({"template": Template(name="t")}, "language code"),
        ({"media": [Media(kind=MediaKind.IMAGE)]}, "provider_id, a url or data"),
    ],
)
async def test_limits_are_checked_before_any_call(
    wa: Setup, content: dict[str, object], match: str
) -> None:
    await wa.open_window()
    calls = len(wa.router.calls)
    with pytest.raises(MessageInvalidError, match=match):
        await wa.channel.send(to(**content))
    assert len(wa.router.calls) == calls


async def test_oversized_upload_is_refused_locally(wa: Setup) -> None:
    sticker = Media(kind=MediaKind.STICKER, mime_type="image/webp", data=b"x" * (500 * 1024 + 1))
    with pytest.raises(MessageInvalidError, match="sticker uploads are limited"):
        await wa.channel.upload_media(sticker)
    assert not wa.router.calls


async def test_window_refusal_explains_and_sends_nothing(wa: Setup) -> None:
    await wa.open_window()
    wa.clock.advance(timedelta(hours=25))
    with pytest.raises(PolicyRefusedError) as refused:
        await wa.channel.send(to(text="late"))
    assert "use_template" in [r.kind for r in refused.value.decision.remedies]
    assert "send an approved template message instead" in str(refused.value)
    assert not wa.router.calls


async def test_customer_message_reopens_the_window(wa: Setup) -> None:
    await wa.open_window()
    wa.clock.advance(timedelta(hours=30))
    await wa.open_window()
    await wa.channel.send(to(text="back again"))


# -- provider errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, 131047, ProviderPolicyError),
        (400, 130429, RateLimitedError),
        (400, 131056, RateLimitedError),
        (401, 190, ProviderAuthError),
        (500, 131000, ProviderUnavailableError),
    ],
)
async def test_graph_errors_are_typed(
    wa: Setup, status: int, code: int, error: type[Exception]
) -> None:
    await wa.open_window()
    wa.api.fail_next(graph_error(status, code, f"error {code}"))
    with pytest.raises(error) as raised:
        await wa.channel.send(to(text="hi"))
    assert raised.value.code == code  # type: ignore[attr-defined]
    assert f"error {code}" in str(raised.value)


async def test_retry_after_is_honoured_then_succeeds(wa: Setup) -> None:
    await wa.open_window()
    wa.api.fail_next(
        httpx.Response(
            429, json={"error": {"code": 4, "message": "slow"}}, headers={"Retry-After": "0"}
        )
    )
    receipt = await wa.channel.send(to(text="hi"))
    assert receipt.message_id
    assert len(wa.router.calls) == 2


async def test_rate_limit_without_short_retry_after_surfaces(wa: Setup) -> None:
    await wa.open_window()
    wa.api.fail_next(
        httpx.Response(
            429, json={"error": {"code": 4, "message": "slow"}}, headers={"Retry-After": "3600"}
        )
    )
    with pytest.raises(RateLimitedError) as raised:
        await wa.channel.send(to(text="hi"))
    assert raised.value.retry_after == 3600


async def test_unreachable_api_is_typed() -> None:
    with respx.mock() as router:
        router.route(host="graph.facebook.com").mock(side_effect=httpx.ConnectError("refused"))
        channel = WhatsAppChannel(kit.CONFIG, retry=RetryPolicy(attempts=2, backoff=0))
        with pytest.raises(ProviderUnavailableError, match="unreachable"):
            await channel.mark_read("wamid.X")
        assert len(router.calls) == 2
        await channel.aclose()


async def test_download_checks_sha256(wa: Setup) -> None:
    uploaded = await wa.channel.upload_media(kit.kit.media)
    assert uploaded.provider_id
    wa.api.media[uploaded.provider_id].data = b"corrupted in transit"
    with pytest.raises(MediaError, match="sha256"):
        await wa.channel.download_media(uploaded)


async def test_inbound_media_event_downloads(wa: Setup) -> None:
    uploaded = await wa.channel.upload_media(kit.kit.media)
    body = kit.inbound("image", {"id": uploaded.provider_id, "mime_type": "image/png"})
    result = await wa.channel.receive(kit.sign(kit.webhook(body)))
    media = result.events[0].message.media[0]  # type: ignore[union-attr]
    assert await wa.channel.download_media(media) == kit.kit.media.data


# -- malformed items ---------------------------------------------------------------------


def _items(kind: str) -> list[dict[str, Any]]:
    values = [json.loads(s.body)["entry"][0]["changes"][0]["value"] for s in kit.SAMPLES]
    return [item for value in values for item in value.get(kind, [])]


def _inbound() -> Inbound:
    return Inbound(WhatsAppChannel.name, FakeClock().now())


@settings(max_examples=300, deadline=None)
@given(message=broken(_items("messages")), status=broken(_items("statuses")))
def test_a_broken_item_is_kept_as_unknown_and_spares_its_batch(
    message: dict[str, Any], status: dict[str, Any]
) -> None:
    good = {"from": "1", "id": "wamid.OK", "timestamp": "1", "type": "text", "text": {"body": "a"}}
    body = kit.notification({"messages": [message, good], "statuses": [status]})
    events = parse_notification(body, _inbound())
    assert [type(e) for e in events][1] is MessageReceived
    assert isinstance(events[0], MessageReceived | UnknownEvent)
    assert isinstance(events[2], StatusUpdate | UnknownEvent)


def test_a_malformed_value_is_kept_as_unknown_and_spares_the_other_changes() -> None:
    good = json.loads(kit.inbound("text", {"body": "hi"}))["entry"][0]["changes"][0]["value"]
    bad = {"messaging_product": "whatsapp", "contacts": "not a list"}
    events = parse_notification(kit.notification(bad, good), _inbound())
    assert isinstance(events[0], UnknownEvent)
    assert events[0].reason.startswith("malformed value: contacts: Input should be a valid list")
    assert events[0].raw == {"field": "messages", "value": bad}
    assert isinstance(events[1], MessageReceived)
    assert events[1].message.text == "hi"


def test_a_malformed_envelope_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match=r"entry\.0\.changes"):
        parse_notification(
            b'{"object": "whatsapp_business_account", "entry": [{"id": "1"}]}', _inbound()
        )


def test_an_unmapped_field_is_kept_as_unknown_whatever_its_value() -> None:
    value = {"messages": "not a list", "event": "FLAGGED"}
    body = kit.notification(value, field="account_update")
    [event] = parse_notification(body, _inbound())
    assert isinstance(event, UnknownEvent)
    assert (event.name, event.reason) == ("account_update", "field is not mapped")
    assert event.raw == {"field": "account_update", "value": value}
