"""The channels agree with the providers' own algorithms and documented values.

Expected signatures are spelled out step by step as the official SDKs compute them
(twilio-python ``RequestValidator``, vonage-python-sdk / PyJWT for Vonage), not through
chatbridge's helpers; the sources are cited in docs/sms.md, docs/line.md,
docs/whatsapp.md and docs/wechat.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode

import anyio
import jwt
import pytest

from chatbridge.clock import FAKE_EPOCH, FakeClock
from chatbridge.errors import PayloadError, SignatureError
from chatbridge.line import kit as line_kit
from chatbridge.models import ChannelEvent, DeliveryState, StatusUpdate, UnknownEvent
from chatbridge.sms.twilio import kit as twilio_kit
from chatbridge.sms.twilio.channel import TwilioChannel
from chatbridge.sms.vonage import kit as vonage_kit
from chatbridge.sms.vonage.channel import VonageChannel
from chatbridge.webhook import WebhookRequest, WebhookResult
from chatbridge.wechat import channel as wechat_channel
from chatbridge.wechat import kit as wechat_kit
from chatbridge.wechat.payloads import parse_xml
from chatbridge.whatsapp import kit as whatsapp_kit

TOKEN = twilio_kit.CONFIG.auth_token.get_secret_value()


def _twilio_signature(data: str) -> str:
    """Base64 HMAC-SHA1 of the signed string, keyed with the auth token."""
    return base64.b64encode(hmac.new(TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()


def _receive(channel: object, request: WebhookRequest) -> WebhookResult:
    async def run() -> WebhookResult:
        return await channel.receive(request)  # type: ignore[attr-defined, no-any-return]

    return anyio.run(run)


def _twilio() -> TwilioChannel:
    return twilio_kit.kit.build({"clock": FakeClock()})


# -- Twilio -----------------------------------------------------------------------------

FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("seen", "signed"),
    [
        ("https://hooks.example:8443/sms", "https://hooks.example/sms"),  # port dropped
        ("https://hooks.example/sms", "https://hooks.example:443/sms"),  # port added
        ("http://hooks.example/sms", "http://hooks.example:80/sms"),
        ("https://hooks.example:8443/sms", "https://hooks.example:8443/sms"),
    ],
)
def test_twilio_signed_url_is_checked_with_and_without_its_port(seen: str, signed: str) -> None:
    body = twilio_kit.incoming("hi")
    params = sorted(parse_qsl(body.decode()))
    header = _twilio_signature(signed + "".join(k + v for k, v in params))
    request = WebhookRequest(
        "POST", seen, {"content-type": FORM, "x-twilio-signature": header}, body
    )
    assert len(_receive(_twilio(), request).events) == 1


def test_twilio_non_standard_port_is_not_swapped_for_another() -> None:
    body = twilio_kit.incoming("hi")
    header = _twilio_signature("https://hooks.example:9000/sms")
    request = WebhookRequest(
        "POST",
        "https://hooks.example:8443/sms",
        {"content-type": FORM, "x-twilio-signature": header},
        body,
    )
    with pytest.raises(SignatureError):
        _receive(_twilio(), request)


def test_twilio_repeated_identical_values_are_signed_once() -> None:
    url = "https://hooks.example/sms"
    form = [
        ("MessageSid", "SMdup"),
        ("From", twilio_kit.CUSTOMER),
        ("Body", "hi"),
        ("Tag", "b"),
        ("Tag", "a"),
        ("Tag", "b"),
    ]
    # Names sorted; each name's distinct values sorted: Tag contributes "Taga" + "Tagb".
    data = url + "Bodyhi" + "From" + twilio_kit.CUSTOMER + "MessageSidSMdup" + "TagaTagb"
    headers = {"content-type": FORM, "x-twilio-signature": _twilio_signature(data)}
    request = WebhookRequest("POST", url, headers, urlencode(form).encode())
    assert len(_receive(_twilio(), request).events) == 1


def _json_webhook(body: bytes, body_hash: str | None = None) -> WebhookRequest:
    digest = body_hash or hashlib.sha256(body).hexdigest()
    url = f"https://hooks.example/sms?bodySHA256={digest}"
    headers = {"content-type": "application/json", "x-twilio-signature": _twilio_signature(url)}
    return WebhookRequest("POST", url, headers, body)


def test_twilio_json_webhook_is_verified_by_url_and_body_hash() -> None:
    body = json.dumps(
        {"MessageSid": "SMjson", "MessageStatus": "delivered", "To": twilio_kit.CUSTOMER}
    ).encode()
    (event,) = _receive(_twilio(), _json_webhook(body)).events
    assert isinstance(event, StatusUpdate) and event.state is DeliveryState.DELIVERED


def test_twilio_json_webhook_with_another_body_is_refused() -> None:
    signed_for = hashlib.sha256(b'{"MessageSid": "SMa"}').hexdigest()
    with pytest.raises(SignatureError):
        _receive(_twilio(), _json_webhook(b'{"MessageSid": "SMb"}', signed_for))


def test_twilio_json_webhook_without_body_hash_is_refused() -> None:
    url = "https://hooks.example/sms"
    headers = {"content-type": "application/json", "x-twilio-signature": _twilio_signature(url)}
    with pytest.raises(SignatureError):
        _receive(_twilio(), WebhookRequest("POST", url, headers, b"{}"))


def test_twilio_json_webhook_it_cannot_map_is_kept_or_refused_cleanly() -> None:
    (event,) = _receive(_twilio(), _json_webhook(b'[{"type": "com.twilio.x"}]')).events
    assert isinstance(event, UnknownEvent)
    with pytest.raises(PayloadError):
        _receive(_twilio(), _json_webhook(b"[" * 5000 + b"]" * 5000))


def test_twilio_public_url_takes_the_request_query() -> None:
    body = b'{"MessageSid": "SMq", "MessageStatus": "sent"}'
    request = _json_webhook(body)
    config = twilio_kit.CONFIG.model_copy(update={"public_url": "https://hooks.example/sms"})
    seen = WebhookRequest(
        "POST", request.url.replace("hooks.example", "10.0.0.1:8000"), request.headers, body
    )
    assert len(_receive(TwilioChannel(config, clock=FakeClock()), seen).events) == 1


# -- Vonage -----------------------------------------------------------------------------

SECRET = vonage_kit.CONFIG.signature_secret.get_secret_value()


def _vonage(body: bytes, claims: dict[str, object]) -> WebhookRequest:
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    return WebhookRequest("POST", vonage_kit.WEBHOOK_URL, headers, body)


def _vonage_channel() -> VonageChannel:
    return vonage_kit.kit.build({"clock": FakeClock()})


@pytest.mark.parametrize("iat", [10**20, -(10**20), 1e20, True, "now"])
def test_vonage_absurd_iat_is_a_signature_error(iat: object) -> None:
    body = vonage_kit.messages_api(text="hi")
    claims = {"iat": iat, "payload_hash": hashlib.sha256(body).hexdigest()}
    with pytest.raises(SignatureError):
        _receive(_vonage_channel(), _vonage(body, claims))


def test_vonage_jwt_is_checked_before_the_body_is_parsed() -> None:
    body = b"[" * 100_000 + b"]" * 100_000  # would be a PayloadError if parsed first
    claims = {"iat": int(FAKE_EPOCH.timestamp()), "payload_hash": "0" * 64}
    with pytest.raises(SignatureError):
        _receive(_vonage_channel(), _vonage(body, claims))


def test_vonage_deeply_nested_signed_json_is_a_payload_error() -> None:
    body = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    claims = {"iat": int(FAKE_EPOCH.timestamp()), "payload_hash": hashlib.sha256(body).hexdigest()}
    with pytest.raises(PayloadError):
        _receive(_vonage_channel(), _vonage(body, claims))


# -- LINE -------------------------------------------------------------------------------


def _line(*events: dict[str, object]) -> WebhookResult:
    request = line_kit.sign(line_kit.webhook(line_kit.webhook_body(*events)), None)
    return _receive(line_kit.kit.build({"clock": FakeClock()}), request)


def test_line_member_joined_keeps_its_reply_token() -> None:
    joined = {"members": [{"type": "user", "userId": line_kit.CUSTOMER}]}
    event = line_kit.line_event("memberJoined", "01MJ", reply_token="rt-joined", joined=joined)
    event["source"] = {"type": "group", "groupId": line_kit.GROUP, "userId": line_kit.CUSTOMER}
    (parsed,) = _line(event).events
    assert isinstance(parsed, ChannelEvent) and parsed.name == "memberJoined"
    assert parsed.reply_token == "rt-joined" and parsed.data == joined


@pytest.mark.parametrize(
    "kind", ["join", "beacon", "accountLink", "membership", "videoPlayComplete", "memberJoined"]
)
def test_line_every_event_with_a_reply_token_keeps_it(kind: str) -> None:
    (parsed,) = _line(line_kit.line_event(kind, f"01{kind}", reply_token="rt-1")).events
    assert parsed.reply_token == "rt-1"


def test_line_standby_events_drop_their_reply_token() -> None:
    event = line_kit.line_event("memberJoined", "01SB", reply_token="rt-s", mode="standby")
    (parsed,) = _line(event).events
    assert parsed.reply_token is None


# -- WhatsApp ---------------------------------------------------------------------------


def test_whatsapp_played_is_a_delivery_state_after_read() -> None:
    request = whatsapp_kit.sign(whatsapp_kit.webhook(whatsapp_kit.status("played")), None)
    (event,) = _receive(whatsapp_kit.kit.build({"clock": FakeClock()}), request).events
    assert isinstance(event, StatusUpdate) and event.state is DeliveryState.PLAYED
    order = list(DeliveryState)
    assert order.index(DeliveryState.READ) < order.index(DeliveryState.PLAYED)


# -- WeChat -----------------------------------------------------------------------------


def _wechat(body: bytes) -> WebhookResult:
    request = wechat_kit.sign(wechat_kit.webhook(body), None)
    return _receive(wechat_kit.kit.build({"clock": FakeClock()}), request)


@pytest.mark.parametrize("depth", [300, 5000])
def test_wechat_deep_xml_is_a_payload_error(depth: int) -> None:
    with pytest.raises(PayloadError):
        _wechat(b"<xml>" + b"<a>" * depth + b"</a>" * depth + b"</xml>")


def test_wechat_large_push_is_parsed_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    hops: list[object] = []
    real = anyio.to_thread.run_sync

    async def counting(func: Callable[[], object]) -> object:
        hops.append(func)
        return await real(func)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    small = wechat_kit.push("text", Content="hi", MsgId="1")
    large = wechat_kit.push("text", Content="x" * 60_000, MsgId="2")
    assert len(_wechat(small).events) == 1 and not hops
    assert len(_wechat(large).events) == 1 and len(hops) == 1


def test_wechat_inline_threshold_parses_within_a_millisecond() -> None:
    """The measurement behind ``_INLINE_MAX_BYTES``: a push just under it, dense with
    elements (the slowest shape to parse), is opened in about a millisecond or less."""
    extra = "".join(f"<e{i}>v</e{i}>" for i in range(900)).encode()
    body = wechat_kit.push("text", Content="x", MsgId="3")[: -len(b"</xml>")] + extra + b"</xml>"
    request = wechat_kit.sign(wechat_kit.webhook(body), None)
    assert len(request.body) <= wechat_channel._INLINE_MAX_BYTES
    channel = wechat_kit.kit.build({"clock": FakeClock()})
    started = time.perf_counter()
    for _ in range(20):
        channel._open(request.query, parse_xml(request.body))
    assert (time.perf_counter() - started) / 20 < timedelta(milliseconds=5).total_seconds()
