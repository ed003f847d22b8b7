"""The Vonage SMS conformance kit: signature-secret SMS API webhooks (inbound, receipts)
and JWT-signed Messages API webhooks, with the fake SMS API."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode

import jwt

from chatbridge.clock import FAKE_EPOCH
from chatbridge.models import (
    ChannelEvent,
    DeliveryState,
    Event,
    MessageReceived,
    OptedIn,
    OptedOut,
    StatusUpdate,
)
from chatbridge.plugin.kit import ChannelKit, Facts, Sample, signing_time
from chatbridge.sms.vonage.channel import VonageChannel, VonageConfig
from chatbridge.sms.vonage.fake import FakeVonageAPI
from chatbridge.webhook import WebhookRequest

CONFIG = VonageConfig(
    api_key="abcd1234",
    api_secret="vonage-test-api-secret",
    signature_secret="vonage-test-signature-secret-0123456789",
    signature_method="sha256",
    sender="447700900001",
)
CUSTOMER = "+447700900123"
WEBHOOK_URL = "https://support.example.com/webhooks/vonage"


def inbound(
    text: str, message_id: str = "0A0000000123ABCD1", sender: str = CUSTOMER, **extra: str
) -> bytes:
    params = {
        "msisdn": sender.removeprefix("+"),
        "to": CONFIG.sender,
        "messageId": message_id,
        "text": text,
        "type": "text",
        "keyword": text.split()[0].upper() if text.split() else "",
        "message-timestamp": f"{FAKE_EPOCH:%Y-%m-%d %H:%M:%S}",
        **extra,
    }
    return urlencode(params).encode()


def receipt(status: str, message_id: str = "0C000000217B7F02", **extra: str) -> bytes:
    params = {
        "msisdn": CUSTOMER.removeprefix("+"),
        "to": CONFIG.sender,
        "network-code": "23410",
        "messageId": message_id,
        "price": "0.03330000",
        "status": status,
        "scts": "2601010000",
        "err-code": "0",
        "message-timestamp": f"{FAKE_EPOCH:%Y-%m-%d %H:%M:%S}",
        **extra,
    }
    return urlencode(params).encode()


def messages_api(**fields: object) -> bytes:
    return json.dumps(
        {
            "message_uuid": "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab",
            "to": CONFIG.sender,
            "from": CUSTOMER.removeprefix("+"),
            "channel": "sms",
            "timestamp": f"{FAKE_EPOCH:%Y-%m-%dT%H:%M:%SZ}",
            **fields,
        }
    ).encode()


def _expect(check: Callable[[list[Event]], bool]) -> Callable[[list[Event]], None]:
    def assert_events(events: list[Event]) -> None:
        assert check(events), events

    return assert_events


SAMPLES = [
    Sample(
        "sms",
        inbound("Where is my parcel?"),
        (MessageReceived,),
        _expect(
            lambda e: (
                isinstance(e[0], MessageReceived)
                and e[0].message.text == "Where is my parcel?"
                and e[0].contact is not None
                and e[0].contact.address == CUSTOMER
            )
        ),
    ),
    Sample("unicode", inbound("Grüße 👋", message_id="0A02", type="unicode"), (MessageReceived,)),
    # & and = in values are signed as _ (Vonage's "Signing messages")
    Sample("ampersand", inbound("Q&A: 2+2=4?", message_id="0A05"), (MessageReceived,)),
    Sample("stop", inbound("STOP", message_id="0A03"), (MessageReceived, OptedOut)),
    Sample("start", inbound("Start", message_id="0A04"), (MessageReceived, OptedIn)),
    Sample(
        "receipt_delivered",
        receipt("delivered"),
        (StatusUpdate,),
        _expect(lambda e: isinstance(e[0], StatusUpdate) and e[0].state is DeliveryState.DELIVERED),
    ),
    Sample(
        "receipt_failed",
        receipt("failed", message_id="0C03", **{"err-code": "6"}),
        (StatusUpdate,),
        _expect(lambda e: isinstance(e[0], StatusUpdate) and e[0].errors[0].code == "6"),
    ),
    Sample("receipt_expired", receipt("expired", message_id="0C04"), (StatusUpdate,)),
    Sample("receipt_accepted", receipt("accepted", message_id="0C05"), (ChannelEvent,)),
    Sample(
        "messages_api_inbound",
        messages_api(message_type="text", text="Hi from the Messages API"),
        (MessageReceived,),
    ),
    Sample("messages_api_status", messages_api(status="delivered"), (StatusUpdate,)),
]


def webhook(body: bytes) -> WebhookRequest:
    kind = "application/json" if body.startswith(b"{") else "application/x-www-form-urlencoded"
    return WebhookRequest("POST", WEBHOOK_URL, {"content-type": kind}, body)


def signer(
    method: str = "sha256",
) -> Callable[[WebhookRequest, str | None], WebhookRequest]:
    """Vonage's two schemes, written here rather than taken from the channel's code:
    a JWT for JSON bodies, else ``sig`` with the signature ``method`` (``md5hash``: MD5
    of the string and the secret; else an HMAC keyed with it)."""

    def sign(request: WebhookRequest, secret: str | None = None) -> WebhookRequest:
        # A forged secret is padded to HS256's minimum key length: only the key differs.
        key = secret.ljust(32, "!") if secret else CONFIG.signature_secret.get_secret_value()
        if request.header("content-type") == "application/json":
            return _with_jwt(request, key)
        try:
            params = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            params = {}
        params.update(timestamp=str(int(signing_time().timestamp())), nonce="6f8d1c7a")
        signed = "".join(
            f"&{name}={value.replace('&', '_').replace('=', '_')}"
            for name, value in sorted(params.items())
        )
        if method == "md5hash":
            sig = hashlib.md5((signed + key).encode(), usedforsecurity=False).hexdigest()
        else:
            sig = hmac.new(key.encode(), signed.encode(), method).hexdigest()
        body = urlencode({**params, "sig": sig}).encode()
        return WebhookRequest(request.method, request.url, request.headers, body)

    return sign


sign = signer()


def _with_jwt(request: WebhookRequest, key: str, **claims: object) -> WebhookRequest:
    """``request`` with a Messages API JWT over its body (``claims`` replace the usual
    ones; None leaves one out)."""
    usual = {
        "iat": int(signing_time().timestamp()),
        "jti": "b1c6c2c4-4c1e-4f5e-9d1a-6f8d1c7a0001",
        "payload_hash": hashlib.sha256(request.body).hexdigest(),
    }
    signed = {name: value for name, value in {**usual, **claims}.items() if value is not None}
    token = jwt.encode(signed, key, algorithm="HS256")
    return request.with_headers(authorization=f"Bearer {token}")


def _broken() -> dict[str, WebhookRequest]:
    """Messages API webhooks signed with the secret whose claims are broken."""
    request = webhook(messages_api(status="delivered"))
    key, at = CONFIG.signature_secret.get_secret_value(), int(FAKE_EPOCH.timestamp())
    broken: dict[str, dict[str, object]] = {
        "without iat": {"iat": None},
        "whose iat is a string": {"iat": str(at)},
        "whose iat is true": {"iat": True},
        "whose iat is beyond any date": {"iat": 10**20},
        "without payload_hash": {"payload_hash": None},
    }
    return {f"a JWT {what}": _with_jwt(request, key, **claims) for what, claims in broken.items()}


def status_body(state: str) -> bytes:
    """An SMS API receipt (``sms:<status>``) or a Messages API status (``messages:...``)."""
    api, _, status = state.partition(":")
    if api == "sms":
        return receipt(status, message_id=f"0C-{status}")
    return messages_api(status=status, message_uuid=f"aaaaaaaa-bbbb-4ccc-8ddd-{status:0>12}")


def _keyword(word: str) -> Callable[[str, datetime], list[bytes]]:
    def bodies(address: str, now: datetime) -> list[bytes]:
        return [inbound(word, message_id=f"0A{word}{int(now.timestamp())}", sender=address)]

    return bodies


FACTS = Facts(
    signature_tolerance=timedelta(minutes=5),  # chatbridge's default; Vonage gives none
    statuses={
        "sms:delivered": DeliveryState.DELIVERED,
        "sms:expired": DeliveryState.FAILED,
        "sms:failed": DeliveryState.FAILED,
        "sms:rejected": DeliveryState.FAILED,
        "sms:accepted": None,
        "sms:buffered": None,
        "sms:unknown": None,
        "messages:submitted": DeliveryState.SENT,
        "messages:delivered": DeliveryState.DELIVERED,
        "messages:read": DeliveryState.READ,
        "messages:rejected": DeliveryState.FAILED,
        "messages:undeliverable": DeliveryState.FAILED,
    },
    sources={
        "statuses": "https://developer.vonage.com/messaging/sms/guides/delivery-receipts; "
        "https://developer.vonage.com/en/messages/concepts/whatsapp/wa-status-callbacks",
        "signature_tolerance": "vonage/vonage-python-sdk: jwt/src/vonage_jwt/verify_jwt.py"
        " (checks no iat age)",
    },
)


def open_conversation(address: str, now: datetime) -> list[bytes]:
    return [inbound("hi", message_id=f"0Aopen{int(now.timestamp())}", sender=address)]


kit = ChannelKit(
    name="sms-vonage",
    channel=VonageChannel,
    config=CONFIG,
    fake_api=lambda: FakeVonageAPI(CONFIG),
    webhook=webhook,
    sign=sign,
    samples=SAMPLES,
    unknown_body=receipt("teleported", message_id="0C99"),
    open_conversation=open_conversation,
    customer=CUSTOMER,
    api_bases=("api_base",),
    outside_window=None,
    media=None,
    facts=FACTS,
    status_body=status_body,
    # err-code 2: "Absent Subscriber - Temporary"
    failed_later=lambda message_id, to: receipt(
        "failed", message_id, msisdn=to.removeprefix("+"), **{"err-code": "2"}
    ),
    opt_out={"STOP": _keyword("STOP")},
    opt_in={"START": _keyword("START")},
    answered={"HELP": _keyword("HELP")},
    broken=_broken(),
    variants={
        "md5hash": {
            "config": CONFIG.model_copy(update={"signature_method": "md5hash"}),
            "sign": signer("md5hash"),
        }
    },
)
