"""The email conformance kit: raw messages through a Mailgun inbound route, Mailgun and
SendGrid event webhooks, and a recording mail transport."""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any
from urllib.parse import parse_qsl, urlencode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from chatbridge.clock import FAKE_EPOCH
from chatbridge.email.channel import EmailChannel, EmailConfig
from chatbridge.email.fake import FakeMailer
from chatbridge.models import (
    ChannelEvent,
    DeliveryState,
    Event,
    MediaKind,
    MessageReceived,
    OptedIn,
    OptedOut,
    StatusUpdate,
    Suppressed,
)
from chatbridge.plugin.fake import FakeAPI
from chatbridge.plugin.kit import ChannelKit, Facts, Sample, signing_time
from chatbridge.webhook import WebhookRequest

SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
MAILGUN_SIGNING_KEY = "mailgun-test-signing-key"
CONFIG = EmailConfig(
    from_address="support@shop.example",
    from_name="Shop Support",
    mailgun_signing_key=MAILGUN_SIGNING_KEY,
    sendgrid_verification_key=base64.b64encode(
        SENDGRID_KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ).decode(),
)
CUSTOMER = "ana@customer.example"
WEBHOOK_URL = "https://support.example.com/webhooks/email"
SIGNED_AT = str(int(FAKE_EPOCH.timestamp()))


def raw_email(
    text: str = "Hello, where is my order?",
    *,
    sender: str = "Ana Lima <ana@customer.example>",
    subject: str = "Order #4711",
    message_id: str = "CAF=1@mail.customer.example",
    html: str | None = None,
    attachment: tuple[str, str, bytes] | None = None,
    date: str = "Thu, 01 Jan 2026 00:00:00 +0000",
    **headers: str,
) -> bytes:
    """A customer's email as their mail client would send it."""
    email = EmailMessage(policy=SMTP)
    email["From"] = sender
    email["To"] = CONFIG.from_address
    email["Subject"] = subject
    email["Date"] = date
    email["Message-ID"] = f"<{message_id}>"
    for name, value in headers.items():
        email[name.replace("_", "-")] = value
    email.set_content(text)
    if html:
        email.add_alternative(html, subtype="html")
    if attachment:
        filename, mime_type, data = attachment
        maintype, _, subtype = mime_type.partition("/")
        email.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return email.as_bytes()


LATIN1_EMAIL = (
    b"From: =?iso-8859-1?q?Jos=E9_M=FCller?= <jose@customer.example>\r\n"
    b"To: support@shop.example\r\n"
    b"Subject: =?utf-8?b?w5xiZXIgbWVpbmUgQmVzdGVsbHVuZw==?=\r\n"
    b"Message-ID: <latin1@customer.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Gr=FC=DFe aus M=FCnchen\r\n"
)


def mailgun_event(name: str, event_id: str, **data: Any) -> bytes:
    event = {
        "event": name,
        "id": event_id,
        "timestamp": FAKE_EPOCH.timestamp(),
        "recipient": CUSTOMER,
        "message": {"headers": {"message-id": "out-1@shop.example"}},
        **data,
    }
    return json.dumps({"event-data": event}).encode()


def sendgrid(*events: dict[str, Any]) -> bytes:
    base = {
        "email": CUSTOMER,
        "timestamp": int(FAKE_EPOCH.timestamp()),
        "smtp-id": "<out-1@shop.example>",
    }
    return json.dumps([{**base, **event} for event in events]).encode()


def _expect(check: Callable[[list[Event]], bool]) -> Callable[[list[Event]], None]:
    def assert_events(events: list[Event]) -> None:
        assert check(events), events

    return assert_events


def _message(events: list[Event]) -> Any:
    event = events[0]
    assert isinstance(event, MessageReceived)
    return event.message


SAMPLES = [
    Sample(
        "plain",
        raw_email(),
        (MessageReceived,),
        _expect(
            lambda e: (
                _message(e).text.strip() == "Hello, where is my order?"
                and _message(e).contact.address == CUSTOMER
                and _message(e).thread == "CAF=1@mail.customer.example"
            )
        ),
    ),
    Sample(
        "html_alternative",
        raw_email("plain part", html="<p>html part</p>", message_id="alt@c"),
        (MessageReceived,),
        _expect(
            lambda e: "html part" in _message(e).html and _message(e).text.strip() == "plain part"
        ),
    ),
    Sample(
        "attachment",
        raw_email(
            "see photo",
            message_id="att@c",
            attachment=("damaged.jpg", "image/jpeg", b"\xff\xd8jpeg"),
        ),
        (MessageReceived,),
        _expect(
            lambda e: (
                _message(e).media[0].kind is MediaKind.IMAGE
                and _message(e).media[0].data == b"\xff\xd8jpeg"
                and _message(e).media[0].filename == "damaged.jpg"
            )
        ),
    ),
    Sample(
        "encoded_headers_latin1",
        LATIN1_EMAIL,
        (MessageReceived,),
        _expect(
            lambda e: (
                _message(e).subject == "Über meine Bestellung"
                and "Grüße aus München" in _message(e).text
            )
        ),
    ),
    Sample(
        "threaded_reply",
        raw_email(
            "Thanks, that helps!\n\n"
            "On Thu, 1 Jan 2026 at 10:00, Shop Support <support@shop.example> wrote:\n"
            "> It ships today.\n",
            subject="Re: Order #4711",
            message_id="reply@c",
            In_Reply_To="<out-1@shop.example>",
            References="<CAF=1@mail.customer.example> <out-1@shop.example>",
        ),
        (MessageReceived,),
        _expect(
            lambda e: (
                _message(e).thread == "CAF=1@mail.customer.example"
                and _message(e).reply_to == "out-1@shop.example"
                and _message(e).stripped_text == "Thanks, that helps!"
            )
        ),
    ),
    Sample(
        "mailgun_delivered",
        mailgun_event("delivered", "mg-1"),
        (StatusUpdate,),
        _expect(
            lambda e: (
                isinstance(e[0], StatusUpdate)
                and e[0].state is DeliveryState.DELIVERED
                and e[0].message_id == "out-1@shop.example"
            )
        ),
    ),
    Sample(
        "mailgun_hard_bounce",
        mailgun_event(
            "failed",
            "mg-2",
            severity="permanent",
            reason="bounce",
            **{"delivery-status": {"code": 550, "message": "No such user"}},
        ),
        (StatusUpdate, Suppressed),
    ),
    Sample(
        "mailgun_soft_bounce",
        mailgun_event("failed", "mg-3", severity="temporary"),
        (StatusUpdate,),
    ),
    Sample("mailgun_complained", mailgun_event("complained", "mg-4"), (Suppressed,)),
    Sample("mailgun_unsubscribed", mailgun_event("unsubscribed", "mg-5"), (OptedOut,)),
    Sample("mailgun_opened", mailgun_event("opened", "mg-6"), (StatusUpdate,)),
    Sample(
        "mailgun_clicked",
        mailgun_event("clicked", "mg-7", url="https://shop.example"),
        (ChannelEvent,),
    ),
    Sample(
        "sendgrid_batch",
        sendgrid(
            {"event": "processed", "sg_event_id": "sg-1"},
            {"event": "delivered", "sg_event_id": "sg-2"},
            {"event": "open", "sg_event_id": "sg-3"},
            {"event": "click", "sg_event_id": "sg-4", "url": "https://shop.example"},
            {
                "event": "bounce",
                "sg_event_id": "sg-5",
                "type": "bounce",
                "reason": "550 5.1.1 unknown",
            },
            {"event": "bounce", "sg_event_id": "sg-6", "type": "blocked", "reason": "blocked"},
            {"event": "dropped", "sg_event_id": "sg-7", "reason": "Bounced Address"},
            {"event": "spamreport", "sg_event_id": "sg-8"},
            {"event": "unsubscribe", "sg_event_id": "sg-9"},
            {"event": "group_resubscribe", "sg_event_id": "sg-10"},
            {"event": "deferred", "sg_event_id": "sg-11"},
        ),
        (
            StatusUpdate,
            StatusUpdate,
            StatusUpdate,
            ChannelEvent,
            Suppressed,
            StatusUpdate,
            StatusUpdate,
            Suppressed,
            OptedOut,
            OptedIn,
            ChannelEvent,
        ),
    ),
]


def webhook(body: bytes) -> WebhookRequest:
    """JSON arrays go to the SendGrid event webhook, JSON objects to the Mailgun event
    webhook, anything else through a Mailgun inbound route as ``body-mime``."""
    if body.startswith((b"[", b"{")):
        return WebhookRequest("POST", WEBHOOK_URL, {"content-type": "application/json"}, body)
    form = urlencode({"recipient": CONFIG.from_address, "body-mime": body.decode("latin-1")})
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return WebhookRequest("POST", WEBHOOK_URL, headers, form.encode("latin-1"))


def sign(request: WebhookRequest, secret: str | None = None) -> WebhookRequest:
    if request.body.startswith(b"["):
        key = SENDGRID_KEY if secret is None else ec.generate_private_key(ec.SECP256R1())
        at = str(int(signing_time().timestamp()))
        signature = key.sign(at.encode() + request.body, ec.ECDSA(hashes.SHA256()))
        return request.with_headers(
            **{
                "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": at,
            }
        )
    signing_key = (secret or MAILGUN_SIGNING_KEY).encode()
    token, at = secrets.token_hex(25), str(int(signing_time().timestamp()))
    signed = {
        "timestamp": at,
        "token": token,
        "signature": hmac.new(signing_key, (at + token).encode(), "sha256").hexdigest(),
    }
    if request.body.startswith(b"{"):
        try:
            document = json.loads(request.body)
        except ValueError:
            return request
        if not isinstance(document, dict):
            return request
        body = json.dumps({"signature": signed, **document}).encode()
    else:
        fields = parse_qsl(request.body.decode("latin-1"), keep_blank_values=True)
        body = urlencode([*fields, *signed.items()]).encode("latin-1")
    return WebhookRequest(request.method, request.url, request.headers, body)


def status_event(state: str) -> bytes:
    """A Mailgun (``mailgun:<event>``) or SendGrid (``sendgrid:<event>``) event."""
    provider, _, name = state.partition(":")
    if provider == "mailgun":
        return mailgun_event(name, f"mg-{name}")
    event = {"event": "bounce", "type": name} if name == "blocked" else {"event": name}
    return sendgrid({**event, "sg_event_id": f"sg-{name}"})


def unsubscribed(address: str, now: datetime) -> list[bytes]:
    at = now.timestamp()
    return [mailgun_event("unsubscribed", f"mg-unsub-{at}", recipient=address, timestamp=at)]


FACTS = Facts(
    signature_tolerance=timedelta(minutes=5),  # chatbridge's default; neither gives one
    statuses={
        "mailgun:accepted": DeliveryState.SENT,
        "mailgun:delivered": DeliveryState.DELIVERED,
        "mailgun:opened": DeliveryState.READ,
        "mailgun:failed": DeliveryState.FAILED,
        "mailgun:rejected": DeliveryState.FAILED,
        "mailgun:clicked": None,
        "sendgrid:processed": DeliveryState.SENT,
        "sendgrid:delivered": DeliveryState.DELIVERED,
        "sendgrid:open": DeliveryState.READ,
        "sendgrid:dropped": DeliveryState.FAILED,
        "sendgrid:blocked": DeliveryState.FAILED,
        "sendgrid:deferred": None,
        "sendgrid:click": None,
    },
    sources={
        "statuses": "https://documentation.mailgun.com/docs/mailgun/user-manual/events/"
        "event-types; https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event",
        "signature_tolerance": "https://documentation.mailgun.com/docs/mailgun/user-manual/"
        "webhooks/securing-webhooks (no number; SendGrid's SDK checks no age)",
    },
)


def open_conversation(address: str, now: datetime) -> list[bytes]:
    return [raw_email("hi", sender=address, message_id=f"open-{now.timestamp()}@c")]


def _wiring(fake: FakeAPI | None) -> dict[str, FakeMailer]:
    """Mail goes out through the fake mailer instead of SMTP."""
    return {"transport": fake if isinstance(fake, FakeMailer) else FakeMailer()}


kit = ChannelKit(
    channel=EmailChannel,
    config=CONFIG,
    fake_api=FakeMailer,
    wiring=_wiring,
    webhook=webhook,
    sign=sign,
    samples=SAMPLES,
    unknown_body=mailgun_event("list_member_uploaded", "mg-unknown"),
    open_conversation=open_conversation,
    customer=CUSTOMER,
    outside_window=None,
    media=None,
    facts=FACTS,
    status_body=status_event,
    opt_out={"unsubscribed": unsubscribed},
    # Mailgun signs timestamp + token only; the channel spends each token once instead.
    signs_body=False,
)
