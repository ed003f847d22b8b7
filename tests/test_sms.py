"""SMS specifics: segment counting, E.164, keywords and auto-replies, opt-out policy,
rate limits, cost estimates, Twilio and Vonage signatures and errors."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
from pydantic import ValidationError

from chatbridge import (
    FakeClock,
    Media,
    MediaKind,
    Message,
    MessageInvalidError,
    PolicyRefusedError,
    ProviderPolicyError,
    RateLimitedError,
    RefusalReason,
    SignatureError,
)
from chatbridge.policy import RateLimit
from chatbridge.sms import Encoding, SmsSettings, count_segments
from chatbridge.sms.keywords import Keyword, keyword_of
from chatbridge.sms.numbers import require_e164
from chatbridge.sms.twilio import TwilioChannel, TwilioConfig
from chatbridge.sms.twilio import kit as twilio_kit
from chatbridge.sms.twilio.fake import FakeTwilioAPI, twilio_error
from chatbridge.sms.twilio.signature import sign as twilio_sign
from chatbridge.sms.vonage import VonageChannel
from chatbridge.sms.vonage import kit as vonage_kit
from chatbridge.sms.vonage.fake import FakeVonageAPI, vonage_status
from chatbridge.webhook import WebhookRequest

pytestmark = pytest.mark.anyio


# -- segments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", Encoding.GSM7, 1),
        ("a" * 160, Encoding.GSM7, 1),
        ("a" * 161, Encoding.GSM7, 2),
        ("a" * 306, Encoding.GSM7, 2),
        ("a" * 307, Encoding.GSM7, 3),
        ("€" * 80, Encoding.GSM7, 1),  # extension characters take two septets
        ("€" * 81, Encoding.GSM7, 2),
        ("a" * 159 + "€", Encoding.GSM7, 2),
        ("a" * 152 + "€" + "a" * 152, Encoding.GSM7, 3),  # the escape pair is not split
        ("é" * 160, Encoding.GSM7, 1),  # é is in the GSM default alphabet
        ("ê" * 70, Encoding.UCS2, 1),  # ê is not
        ("ê" * 71, Encoding.UCS2, 2),
        ("👋" * 35, Encoding.UCS2, 1),  # a surrogate pair counts twice
        ("👋" * 36, Encoding.UCS2, 2),
        ("a" * 66 + "👋" + "a" * 66, Encoding.UCS2, 3),  # ... and is not split
    ],
)
def test_segments(text: str, encoding: Encoding, segments: int) -> None:
    count = count_segments(text)
    assert (count.encoding, count.segments) == (encoding, segments)


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("STOP", Keyword.OPT_OUT),
        (" stop. ", Keyword.OPT_OUT),
        ("End", Keyword.OPT_OUT),
        ("yes", Keyword.OPT_IN),
        ("Help!", Keyword.HELP),
        ("stop sending me offers", None),
        (None, None),
    ],
)
def test_keywords(text: str | None, keyword: Keyword | None) -> None:
    assert keyword_of(text) == keyword


@pytest.mark.parametrize(
    "number", ["4155550123", "+0123456", "+1415555012345678", "+1 415 555 0123", "+1415"]
)
def test_e164_is_enforced(number: str) -> None:
    with pytest.raises(MessageInvalidError):
        require_e164(number)


def test_e164_accepts_real_numbers() -> None:
    assert require_e164("+14155550123") == "+14155550123"
    assert require_e164("+447700900123") == "+447700900123"


# -- Twilio ------------------------------------------------------------------------------


@dataclass
class Twilio:
    channel: TwilioChannel
    api: FakeTwilioAPI
    clock: FakeClock

    async def receive(self, body: bytes) -> object:
        return await self.channel.receive(twilio_kit.sign(twilio_kit.webhook(body)))

    def to(self, text: str = "hi", number: str = twilio_kit.CUSTOMER, **more: object) -> Message:
        return Message(contact=self.channel.identity(number), text=text, **more)  # type: ignore[arg-type]


@pytest.fixture
async def twilio() -> AsyncIterator[Twilio]:
    api, clock = FakeTwilioAPI(twilio_kit.CONFIG), FakeClock()
    settings = SmsSettings(
        max_segments=3,
        price_per_segment=Decimal("0.0079"),
        rate_limit=RateLimit(count=2, period=timedelta(minutes=1)),
        stop_reply="You are unsubscribed.",
    )
    with respx.mock(assert_all_called=False) as router:
        router.route(host=api.hosts[0]).mock(side_effect=api)
        channel = TwilioChannel(twilio_kit.CONFIG, settings, clock=clock)
        yield Twilio(channel, api, clock)
        await channel.aclose()


async def test_twilio_send_with_estimate(twilio: Twilio) -> None:
    receipt = await twilio.channel.send(twilio.to("ü" * 100))
    assert twilio.api.sent[-1]["Body"] == ["ü" * 100] and twilio.api.sent[-1]["From"] == [
        "+14155550100"
    ]
    estimate = twilio.channel.estimate(twilio.to("ê" * 100))
    assert (estimate.encoding, estimate.segments, estimate.cost) == (
        Encoding.UCS2,
        2,
        Decimal("0.0158"),
    )
    assert receipt.raw["estimate"]["segments"] == 1


async def test_too_many_segments_is_refused_before_sending(twilio: Twilio) -> None:
    with pytest.raises(MessageInvalidError, match="4 UCS-2 segments"):
        await twilio.channel.send(twilio.to("ê" * 250))
    assert not twilio.api.requests


async def test_mms_media_urls_are_repeated(twilio: Twilio) -> None:
    media = [Media(kind=MediaKind.IMAGE, url=f"https://cdn.example.com/{i}.jpg") for i in range(2)]
    await twilio.channel.send(twilio.to("look", media=media))
    assert twilio.api.sent[-1]["MediaUrl"] == [
        "https://cdn.example.com/0.jpg",
        "https://cdn.example.com/1.jpg",
    ]


async def test_stop_opts_out_replies_and_blocks_sends(twilio: Twilio) -> None:
    result = await twilio.receive(twilio_kit.incoming("STOP", sid="SMstop"))
    assert b"<Message>You are unsubscribed.</Message>" in result.response.body  # type: ignore[attr-defined]
    with pytest.raises(PolicyRefusedError) as refused:
        await twilio.channel.send(twilio.to())
    assert refused.value.decision.reason is RefusalReason.OPTED_OUT
    assert not twilio.api.requests
    await twilio.receive(twilio_kit.incoming("START", sid="SMstart"))
    await twilio.channel.send(twilio.to())


async def test_help_is_answered_with_twiml(twilio: Twilio) -> None:
    result = await twilio.receive(twilio_kit.incoming("help", sid="SMhelp"))
    assert result.response.media_type == "application/xml"  # type: ignore[attr-defined]
    assert b"Reply STOP to unsubscribe" in result.response.body  # type: ignore[attr-defined]
    plain = await twilio.receive(twilio_kit.incoming("hello", sid="SMhello"))
    assert plain.response.body.endswith(b"<Response />")  # type: ignore[attr-defined]


async def test_rate_limit_per_number(twilio: Twilio) -> None:
    await twilio.channel.send(twilio.to("1"))
    await twilio.channel.send(twilio.to("2"))
    with pytest.raises(PolicyRefusedError) as refused:
        await twilio.channel.send(twilio.to("3"))
    decision = refused.value.decision
    assert decision.reason is RefusalReason.RATE_LIMITED and decision.until is not None
    await twilio.channel.send(twilio.to("other number", number="+14155550199"))
    twilio.clock.advance(timedelta(minutes=1))
    await twilio.channel.send(twilio.to("4"))


async def test_provider_refusal_gives_the_rate_back(twilio: Twilio) -> None:
    twilio.api.fail_next(twilio_error(429, 20429, "Too Many Requests"))
    with pytest.raises(RateLimitedError):
        await twilio.channel.send(twilio.to("1"))
    await twilio.channel.send(twilio.to("2"))
    await twilio.channel.send(twilio.to("3"))


async def test_twilio_21610_records_the_opt_out(twilio: Twilio) -> None:
    twilio.api.unsubscribed.add(twilio_kit.CUSTOMER)
    with pytest.raises(ProviderPolicyError, match="21610"):
        await twilio.channel.send(twilio.to())
    with pytest.raises(PolicyRefusedError):
        await twilio.channel.send(twilio.to())


async def test_twilio_signature_port_variants_and_get() -> None:
    channel = twilio_kit.kit.build({"clock": FakeClock()})
    body = twilio_kit.incoming("hi", sid="SMport")
    params = parse_qsl(body.decode())
    token = twilio_kit.CONFIG.auth_token.get_secret_value()
    with_port = twilio_sign("https://support.example.com:443/webhooks/sms", params, token)
    request = twilio_kit.webhook(body).with_headers(**{"X-Twilio-Signature": with_port})
    assert (await channel.receive(request)).events
    url = "https://support.example.com/webhooks/sms?MessageSid=SMget&From=%2B14155550123&Body=hi"
    signature = twilio_sign(url, [], token)
    assert (
        await channel.receive(WebhookRequest("GET", url, {"X-Twilio-Signature": signature}))
    ).events
    forged = WebhookRequest("GET", url + "&Body=forged", {"X-Twilio-Signature": signature})
    with pytest.raises(SignatureError):
        await channel.receive(forged)


async def test_twilio_media_download_follows_redirect() -> None:
    api = FakeTwilioAPI(twilio_kit.CONFIG)
    api.media["m1"] = b"jpeg"
    with respx.mock() as router:
        router.get("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1").mock(
            return_value=httpx.Response(
                307, headers={"location": "https://api.twilio.com/fake-media/m1"}
            )
        )
        router.route(host="api.twilio.com", path__startswith="/fake-media").mock(side_effect=api)
        channel = twilio_kit.kit.build({})
        media = Media(
            kind=MediaKind.IMAGE,
            url="https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
        )
        assert await channel.download_media(media) == b"jpeg"
        await channel.aclose()


# -- Vonage ------------------------------------------------------------------------------


@pytest.fixture
async def vonage() -> AsyncIterator[tuple[VonageChannel, FakeVonageAPI]]:
    api = FakeVonageAPI(vonage_kit.CONFIG)
    with respx.mock(assert_all_called=False) as router:
        router.route(host=api.hosts[0]).mock(side_effect=api)
        channel = VonageChannel(vonage_kit.CONFIG, clock=FakeClock())
        yield channel, api
        await channel.aclose()


async def test_vonage_send_unicode_and_number_format(
    vonage: tuple[VonageChannel, FakeVonageAPI],
) -> None:
    channel, api = vonage
    receipt = await channel.send(
        Message(contact=channel.identity(vonage_kit.CUSTOMER), text="Grüße ê")
    )
    assert api.sent[-1]["to"] == "447700900123" and api.sent[-1]["type"] == "unicode"
    assert receipt.message_id


@pytest.mark.parametrize(
    ("status", "error"), [("1", RateLimitedError), ("29", ProviderPolicyError)]
)
async def test_vonage_statuses_are_typed(
    vonage: tuple[VonageChannel, FakeVonageAPI], status: str, error: type[Exception]
) -> None:
    channel, api = vonage
    api.fail_next(vonage_status(status, "refused"))
    with pytest.raises(error, match=f"status {status}"):
        await channel.send(Message(contact=channel.identity(vonage_kit.CUSTOMER), text="x"))


async def test_vonage_help_is_answered_through_the_api(
    vonage: tuple[VonageChannel, FakeVonageAPI],
) -> None:
    channel, api = vonage
    await channel.receive(
        vonage_kit.sign(vonage_kit.webhook(vonage_kit.inbound("HELP", message_id="0AH")))
    )
    assert api.sent[-1]["text"].startswith("Reply STOP")


async def test_vonage_signatures(vonage: tuple[VonageChannel, FakeVonageAPI]) -> None:
    channel, _ = vonage
    unsigned = vonage_kit.webhook(vonage_kit.inbound("hi", message_id="0AU"))
    with pytest.raises(SignatureError, match="neither sig nor"):
        await channel.receive(unsigned)
    signed = vonage_kit.sign(unsigned)
    tampered = WebhookRequest(
        "POST", signed.url, signed.headers, signed.body.replace(b"text=hi", b"text=ho")
    )
    with pytest.raises(SignatureError):
        await channel.receive(tampered)
    jwt_signed = vonage_kit.sign(
        vonage_kit.webhook(vonage_kit.messages_api(message_type="text", text="a"))
    )
    altered = WebhookRequest(
        "POST", jwt_signed.url, jwt_signed.headers, jwt_signed.body.replace(b'"a"', b'"b"')
    )
    with pytest.raises(SignatureError, match="payload_hash"):
        await channel.receive(altered)
    late = VonageChannel(
        vonage_kit.CONFIG, clock=FakeClock(vonage_kit.FAKE_EPOCH + timedelta(hours=1))
    )
    with pytest.raises(SignatureError, match="away from now"):
        await late.receive(signed)


def test_a_twilio_public_url_that_cannot_be_parsed_is_refused_without_showing_it() -> None:
    url = "https://twilio:hunter2@support.example.com:abc/sms"  # a password in the URL
    with pytest.raises(ValidationError) as refused:
        TwilioConfig(account_sid="AC1", auth_token="t", from_number="+14155550100", public_url=url)
    assert "hunter2" not in str(refused.value) and "public_url" in str(refused.value)
