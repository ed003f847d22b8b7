"""The Twilio SMS conformance kit: signed form webhooks (incoming SMS/MMS, keywords,
status callbacks, as in "Messaging webhooks") and the fake Messages API."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from chatbridge.models import (
    ChannelEvent,
    DeliveryState,
    Event,
    MediaKind,
    MessageReceived,
    OptedIn,
    OptedOut,
    StatusUpdate,
)
from chatbridge.plugin.kit import ChannelKit, Facts, Sample
from chatbridge.policy import RateLimit
from chatbridge.sms.channel import SmsSettings
from chatbridge.sms.twilio.channel import TwilioChannel, TwilioConfig
from chatbridge.sms.twilio.fake import FakeTwilioAPI
from chatbridge.webhook import WebhookRequest

CONFIG = TwilioConfig(
    account_sid="AC00000000000000000000000000000001",
    auth_token="twilio-test-auth-token",
    from_number="+14155550100",
)
CUSTOMER = "+14155550123"
WEBHOOK_URL = "https://support.example.com/webhooks/sms"
HTTP_URL = "http://support.example.com/webhooks/sms"
PRIVATE_URL = "http://10.0.0.7:8000/sms"  # where a proxy forwards WEBHOOK_URL


def incoming(body: str, sid: str = "SM1", sender: str = CUSTOMER, **extra: str) -> bytes:
    params = {
        "MessageSid": sid,
        "AccountSid": CONFIG.account_sid,
        "From": sender,
        "To": str(CONFIG.from_number),
        "Body": body,
        "NumMedia": "0",
        "SmsStatus": "received",
        **extra,
    }
    return urlencode(params).encode()


def status(state: str, sid: str = "SMout1", **extra: str) -> bytes:
    params = {
        "MessageSid": sid,
        "MessageStatus": state,
        "To": CUSTOMER,
        "From": str(CONFIG.from_number),
        **extra,
    }
    return urlencode(params).encode()


def _expect(check: Callable[[list[Event]], bool]) -> Callable[[list[Event]], None]:
    def assert_events(events: list[Event]) -> None:
        assert check(events), events

    return assert_events


def _text(events: list[Event]) -> str | None:
    event = events[0]
    assert isinstance(event, MessageReceived)
    return event.message.text


SAMPLES = [
    Sample(
        "sms",
        incoming("Is my order shipped?"),
        (MessageReceived,),
        _expect(
            lambda e: (
                _text(e) == "Is my order shipped?"
                and e[0].contact is not None
                and e[0].contact.address == CUSTOMER
            )
        ),
    ),
    Sample(
        "mms",
        incoming(
            "photo",
            sid="MM2",
            NumMedia="2",
            MediaUrl0="https://api.twilio.com/fake-media/m1",
            MediaContentType0="image/jpeg",
            MediaUrl1="https://api.twilio.com/fake-media/m2",
            MediaContentType1="video/mp4",
        ),
        (MessageReceived,),
        _expect(
            lambda e: (
                isinstance(e[0], MessageReceived)
                and [m.kind for m in e[0].message.media] == [MediaKind.IMAGE, MediaKind.VIDEO]
            )
        ),
    ),
    Sample("stop", incoming("Stop", sid="SM3"), (MessageReceived, OptedOut)),
    Sample("stopall", incoming(" STOPALL ", sid="SM4"), (MessageReceived, OptedOut)),
    Sample("unsubscribe", incoming("unsubscribe", sid="SM5"), (MessageReceived, OptedOut)),
    Sample("cancel_end_quit", incoming("quit.", sid="SM6"), (MessageReceived, OptedOut)),
    Sample("start", incoming("START", sid="SM7"), (MessageReceived, OptedIn)),
    Sample("unstop", incoming("unstop", sid="SM8"), (MessageReceived, OptedIn)),
    Sample("help", incoming("HELP", sid="SM9"), (MessageReceived,)),
    Sample("run_on_keyword", incoming("STOPX", sid="SM11"), (MessageReceived,)),
    Sample(
        "advanced_opt_out",
        incoming("stop", sid="SM10", OptOutType="STOP"),
        (MessageReceived, OptedOut),
    ),
    Sample("status_sent", status("sent"), (StatusUpdate,)),
    Sample(
        "status_delivered",
        status("delivered", sid="SMout2"),
        (StatusUpdate,),
        _expect(lambda e: isinstance(e[0], StatusUpdate) and e[0].state is DeliveryState.DELIVERED),
    ),
    Sample(
        "status_undelivered",
        status("undelivered", sid="SMout3", ErrorCode="30007"),
        (StatusUpdate,),
        _expect(lambda e: isinstance(e[0], StatusUpdate) and e[0].errors[0].code == "30007"),
    ),
    Sample("status_failed", status("failed", sid="SMout4", ErrorCode="30008"), (StatusUpdate,)),
    Sample("status_read", status("read", sid="SMout5"), (StatusUpdate,)),
    Sample("status_queued", status("queued", sid="SMout6"), (ChannelEvent,)),
    Sample(
        "json_status",
        json.dumps({"MessageSid": "SMout7", "MessageStatus": "delivered", "To": CUSTOMER}).encode(),
        (StatusUpdate,),
    ),
]


def webhook(body: bytes, url: str = WEBHOOK_URL) -> WebhookRequest:
    """A form webhook, or a JSON one for a JSON body."""
    kind = "application/json" if body.startswith(b"{") else "application/x-www-form-urlencoded"
    return WebhookRequest("POST", url, {"content-type": kind}, body)


def get_webhook(body: bytes) -> WebhookRequest:
    """A form body as a GET webhook's query (Twilio calls GET when the number's webhook
    method is GET); JSON and what is no form or too long for a URL stay POST."""
    try:
        text = body.decode("ascii")
        parse_qsl(text, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        text = ""
    if not text or len(text) > 2000:
        return webhook(body)
    return WebhookRequest("GET", f"{WEBHOOK_URL}?{text}", {}, b"")


def signer(
    requested: Callable[[str], str] = lambda url: url,
) -> Callable[[WebhookRequest, str | None], WebhookRequest]:
    """Twilio's X-Twilio-Signature (written here, not taken from the channel's code),
    over ``requested(url)``: the URL Twilio requested, where the application sees
    ``url``; then each distinct form parameter, sorted; a JSON body's SHA-256 goes into
    the URL as ``bodySHA256`` instead."""

    def sign(request: WebhookRequest, secret: str | None = None) -> WebhookRequest:
        token = secret or CONFIG.auth_token.get_secret_value()
        params: list[tuple[str, str]] = []
        if request.header("content-type") == "application/json":
            joint = "&" if "?" in request.url else "?"
            url = f"{request.url}{joint}bodySHA256={hashlib.sha256(request.body).hexdigest()}"
            request = WebhookRequest(request.method, url, request.headers, request.body)
        elif request.method == "POST":  # a GET's parameters are in its (signed) URL
            with contextlib.suppress(UnicodeDecodeError):
                params = parse_qsl(request.body.decode(), keep_blank_values=True)
        data = requested(request.url) + "".join(name + value for name, value in sorted(set(params)))
        return _signed(request, data, token)

    return sign


def _signed(request: WebhookRequest, data: str, token: str) -> WebhookRequest:
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return request.with_headers(**{"X-Twilio-Signature": base64.b64encode(digest).decode()})


sign = signer()


def _broken() -> dict[str, WebhookRequest]:
    """Signed with the auth token, as only Twilio could: a JSON webhook whose signed URL
    carries no bodySHA256."""
    request = webhook(SAMPLES[-1].body)
    token = CONFIG.auth_token.get_secret_value()
    return {"a JSON webhook without bodySHA256": _signed(request, request.url, token)}


def _netloc(url: str, netloc: Callable[[SplitResult], str]) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=netloc(parts)))


def _with_port(url: str) -> str:
    """``url`` with its scheme's standard port (Twilio sometimes signs it so)."""
    return _netloc(url, lambda p: f"{p.hostname}:{443 if p.scheme == 'https' else 80}")


def _without_port(url: str) -> str:
    return _netloc(url, lambda p: p.hostname or "")


def _public(url: str) -> str:
    """The URL Twilio requested, for a proxy that forwards it to ``PRIVATE_URL``."""
    return url.replace(PRIVATE_URL, WEBHOOK_URL)


def _query_dropped(body: bytes) -> WebhookRequest:
    """A webhook to ``WEBHOOK_URL?tenant=7`` forwarded to ``PRIVATE_URL`` by a proxy that
    drops the query (but for a JSON webhook, whose query carries its bodySHA256)."""
    return webhook(body, PRIVATE_URL + ("?tenant=7" if body.startswith(b"{") else ""))


def _public_with_query(url: str) -> str:
    """The URL Twilio requested, for ``_query_dropped``."""
    return _public(url) if "?" in url else url.replace(PRIVATE_URL, f"{WEBHOOK_URL}?tenant=7")


# A URL with credentials: Twilio drops them before signing ("Security", A few notes);
# the official SDKs' validators sign them.
_WITH_CREDENTIALS = WEBHOOK_URL.replace("https://", "https://twilio:pa%3Ass@")


# The ways Twilio's requests differ with the number's settings and the network
# ("Webhooks security"; twilio-python's RequestValidator).
VARIANTS: dict[str, dict[str, object]] = {
    "get": {"webhook": get_webhook, "signs_body": False},
    "signed-with-port": {"sign": signer(_with_port)},
    "http-signed-with-port": {
        "webhook": lambda body: webhook(body, HTTP_URL),
        "sign": signer(_with_port),
    },
    "signed-without-port": {
        "webhook": lambda body: webhook(body, _with_port(WEBHOOK_URL)),
        "sign": signer(_without_port),
    },
    "behind-a-proxy": {
        "config": CONFIG.model_copy(update={"public_url": WEBHOOK_URL}),
        "webhook": lambda body: webhook(body, PRIVATE_URL),
        "sign": signer(_public),
        "signs_url": False,  # the proxy decides where a request lands, not its URL
    },
    "behind-a-proxy-with-a-query": {  # the configured URL's query reaches the app too
        "config": CONFIG.model_copy(update={"public_url": f"{WEBHOOK_URL}?tenant=7"}),
        "webhook": lambda body: webhook(body, f"{PRIVATE_URL}?tenant=7"),
        "sign": signer(_public),
        "signs_url": False,
    },
    "behind-a-proxy-that-drops-the-query": {
        "config": CONFIG.model_copy(update={"public_url": f"{WEBHOOK_URL}?tenant=7"}),
        "webhook": _query_dropped,
        "sign": signer(_public_with_query),
        "signs_url": False,
    },
    "credentials-in-the-url": {
        "config": CONFIG.model_copy(update={"public_url": _WITH_CREDENTIALS}),
        "webhook": lambda body: webhook(body, PRIVATE_URL),
        "sign": signer(_public),
        "signs_url": False,
    },
    "credentials-in-the-url-signed-with-them": {  # as the official SDKs sign it
        "config": CONFIG.model_copy(update={"public_url": _WITH_CREDENTIALS}),
        "webhook": lambda body: webhook(body, PRIVATE_URL),
        "sign": signer(lambda url: url.replace(PRIVATE_URL, _WITH_CREDENTIALS)),
        "signs_url": False,
    },
}


# https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out
_OPT_OUT = ("STOP", "stopall", "Unsubscribe", "CANCEL", "end", "QUIT", "revoke", "OPTOUT")


def _keyword(word: str) -> Callable[[str, datetime], list[bytes]]:
    def bodies(address: str, now: datetime) -> list[bytes]:
        return [incoming(word, sid=f"SM{word}{int(now.timestamp())}", sender=address)]

    return bodies


FACTS = Facts(
    answer_type="application/xml",  # TwiML, even to reply nothing: <Response></Response>
    statuses={
        "queued": None,
        "sending": None,
        "accepted": None,
        "scheduled": None,
        "sent": DeliveryState.SENT,
        "delivered": DeliveryState.DELIVERED,
        "read": DeliveryState.READ,
        "undelivered": DeliveryState.FAILED,
        "failed": DeliveryState.FAILED,
        "canceled": DeliveryState.FAILED,
    },
    sources={
        "answer_type": "https://www.twilio.com/docs/usage/webhooks/sms-webhooks",
        "statuses": "twilio/twilio-python: twilio/rest/api/v2010/account/message/__init__.py"
        " (class Status); https://www.twilio.com/docs/messaging/guides/"
        "outbound-message-status-in-status-callbacks",
    },
)


_RATE = RateLimit(count=50, period=timedelta(minutes=1))  # above what other checks send


def open_conversation(address: str, now: datetime) -> list[bytes]:
    return [incoming("hi", sid=f"SMopen{int(now.timestamp())}", sender=address)]


kit = ChannelKit(
    name="sms-twilio",
    channel=TwilioChannel,
    config=CONFIG,
    fake_api=lambda: FakeTwilioAPI(CONFIG),
    webhook=webhook,
    sign=sign,
    samples=SAMPLES,
    unknown_body=status("partially_delivered", sid="SMout9"),
    open_conversation=open_conversation,
    customer=CUSTOMER,
    api_bases=("api_base",),
    outside_window=None,
    media=None,
    facts=FACTS,
    signs_url=True,
    status_body=lambda state: status(state, sid=f"SMout-{state}"),
    # 30003: "Unreachable destination handset" (the status callback has no ErrorMessage)
    failed_later=lambda sid, to: status("undelivered", sid=sid, To=to, ErrorCode="30003"),
    # Twilio's default keywords, in the case customers happen to type them.
    opt_out={word: _keyword(word) for word in _OPT_OUT},
    opt_in={word: _keyword(word) for word in ("START", "yes", "Unstop")},
    answered={word: _keyword(word) for word in ("HELP", "info")},
    broken=_broken(),
    variants={
        **VARIANTS,
        # chatbridge's own per-contact limit (SmsSettings.rate_limit), as a user sets it
        "rate-limited": {
            "wiring": lambda fake: {"settings": SmsSettings(rate_limit=_RATE)},
            "facts": replace(FACTS, rate_limit=_RATE),
        },
    },
    misconfigured={
        "a public URL whose port is no number": {
            "public_url": "https://support.example.com:abc/sms"
        },
        "both a sender number and a messaging service": {"messaging_service_sid": "MG" + "0" * 32},
    },
)
