"""Email: real SMTP delivery (aiosmtpd on loopback), MIME threading round trips,
Mailgun/SendGrid webhooks, suppression, quote stripping, size limits."""

import json
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from chatbridge import (
    FakeClock,
    Media,
    MediaKind,
    Message,
    MessageReceived,
    PayloadError,
    PayloadTooLargeError,
    PolicyRefusedError,
    ProviderAuthError,
    ProviderPolicyError,
    ProviderUnavailableError,
    RefusalReason,
    SignatureError,
    WebhookRequest,
)
from chatbridge.email import EmailChannel, EmailConfig, SmtpSettings, kit
from chatbridge.email.quotes import strip_quoted
from chatbridge.email.signature import SENDGRID_TIMESTAMP, mailgun_signature
from tests.loopback import free_port
from tests.smtp_server import PASSWORD, USER, Inbox, self_signed_context, start

pytestmark = pytest.mark.anyio
CUSTOMER = kit.CUSTOMER


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def smtp(inbox: Inbox) -> Iterator[Controller]:
    controller = start(inbox)
    yield controller
    controller.stop()


def channel_for(port: int, **smtp: object) -> EmailChannel:
    settings = SmtpSettings.model_validate(
        {"host": "127.0.0.1", "port": port, "security": "none", **smtp}
    )
    config = kit.CONFIG.model_copy(update={"smtp": settings})
    return EmailChannel(config, clock=FakeClock())


def received(inbox: Inbox, index: int = -1) -> object:
    return message_from_bytes(inbox.messages[index].content, policy=policy.default)  # type: ignore[arg-type]


async def test_threaded_reply_over_real_smtp(smtp: Controller, inbox: Inbox) -> None:
    email = channel_for(smtp.port)
    first = (await email.receive(kit.sign(kit.webhook(kit.raw_email())))).events[0]
    assert isinstance(first, MessageReceived)
    reply = email.reply(first.message, "It ships today.", html="<p>It ships <b>today</b>.</p>")
    reply.media.append(
        Media(
            kind=MediaKind.FILE,
            mime_type="application/pdf",
            data=b"%PDF-1.7",
            filename="invoice.pdf",
        )
    )
    receipt = await email.send(reply)
    sent = received(inbox)
    assert inbox.messages[-1].rcpt_tos == [CUSTOMER]
    assert sent["Subject"] == "Re: Order #4711"  # type: ignore[index]
    assert sent["In-Reply-To"] == "<CAF=1@mail.customer.example>"  # type: ignore[index]
    assert sent["References"] == "<CAF=1@mail.customer.example>"  # type: ignore[index]
    assert sent["Message-ID"] == f"<{receipt.message_id}>"  # type: ignore[index]
    assert sent.get_body(("plain",)).get_content().strip() == "It ships today."  # type: ignore[attr-defined]
    assert "<b>today</b>" in sent.get_body(("html",)).get_content()  # type: ignore[attr-defined]
    [attachment] = list(sent.iter_attachments())  # type: ignore[attr-defined]
    assert attachment.get_filename() == "invoice.pdf" and attachment.get_content() == b"%PDF-1.7"
    # The customer answers in their client; the answer lands in the same thread.
    answer = kit.raw_email(
        "Great, thanks!\n\n> It ships today.",
        subject="Re: Order #4711",
        message_id="answer@c",
        In_Reply_To=f"<{receipt.message_id}>",
        References=f"<CAF=1@mail.customer.example> <{receipt.message_id}>",
    )
    event = (await email.receive_raw(answer)).events[0]
    assert isinstance(event, MessageReceived)
    assert event.message.thread == first.message.thread
    assert event.message.reply_to == receipt.message_id
    assert event.message.stripped_text == "Great, thanks!"


async def test_smtp_auth_and_starttls(tmp_path: Path, inbox: Inbox) -> None:
    controller = start(inbox, tls=self_signed_context(tmp_path), auth=True)
    try:
        good = channel_for(
            controller.port,
            security="starttls",
            validate_certs=False,
            username=USER,
            password=PASSWORD,
        )
        await good.send(Message(contact=good.identity(CUSTOMER), subject="hi", text="over TLS"))
        assert len(inbox.messages) == 1
        bad = channel_for(
            controller.port,
            security="starttls",
            validate_certs=False,
            username=USER,
            password="wrong",
        )
        with pytest.raises(ProviderAuthError):
            await bad.send(Message(contact=bad.identity(CUSTOMER), subject="hi", text="x"))
    finally:
        controller.stop()


async def test_refused_recipient_and_unreachable_server(smtp: Controller, inbox: Inbox) -> None:
    inbox.refuse.add("nobody@customer.example")
    email = channel_for(smtp.port)
    with pytest.raises(ProviderPolicyError, match="refused the recipient"):
        await email.send(Message(contact=email.identity("nobody@customer.example"), text="x"))
    closed = channel_for(free_port(), timeout=2)
    with pytest.raises(ProviderUnavailableError):
        await closed.send(Message(contact=closed.identity(CUSTOMER), text="x"))


async def test_suppressed_and_unsubscribed_addresses_are_refused_without_smtp(
    smtp: Controller, inbox: Inbox
) -> None:
    email = channel_for(smtp.port)
    bounce = kit.sendgrid(
        {"event": "bounce", "sg_event_id": "b1", "type": "bounce", "reason": "550 no such user"}
    )
    await email.receive(kit.sign(kit.webhook(bounce)))
    with pytest.raises(PolicyRefusedError) as refused:
        await email.send(Message(contact=email.identity(CUSTOMER), text="x"))
    assert refused.value.decision.reason is RefusalReason.SUPPRESSED
    assert "550 no such user" in str(refused.value)
    other = email.identity("bob@customer.example")
    unsubscribe = kit.mailgun_event("unsubscribed", "u1", recipient=other.address)
    await email.receive(kit.sign(kit.webhook(unsubscribe)))
    with pytest.raises(PolicyRefusedError) as refused:
        await email.send(Message(contact=other, text="x"))
    assert refused.value.decision.reason is RefusalReason.OPTED_OUT
    assert not inbox.messages


async def test_mailgun_parsed_form_with_attachment() -> None:
    email = kit.kit.build({"clock": FakeClock()})
    boundary = "XyZ"
    fields = {
        "sender": "Ana@Customer.example",
        "subject": "Broken lid",
        "body-plain": "See attached.\n\nOn Mon, Ana wrote:\n> old",
        "stripped-text": "See attached.",
        "Message-Id": "<mg-inbound-1@customer.example>",
        "References": "<root@shop.example>",
        "timestamp": kit.SIGNED_AT,
        "token": "t" * 50,
    }
    fields["signature"] = mailgun_signature("mailgun-test-signing-key", kit.SIGNED_AT, "t" * 50)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in fields.items()
    ]
    parts.append(
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="attachment-1"; filename="lid.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\nJPEGDATA\r\n"
    )
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    event = (await email.receive(WebhookRequest("POST", kit.WEBHOOK_URL, headers, body))).events[0]
    assert isinstance(event, MessageReceived)
    message = event.message
    assert message.contact.address == "ana@customer.example"
    assert message.stripped_text == "See attached." and message.thread == "root@shop.example"
    assert message.media[0].filename == "lid.jpg" and message.media[0].data == b"JPEGDATA"


async def test_mailgun_replays_and_stale_timestamps_are_refused() -> None:
    email = kit.kit.build({"clock": FakeClock()})
    signed = kit.sign(kit.webhook(kit.mailgun_event("delivered", "d1")))
    await email.receive(signed)
    with pytest.raises(SignatureError, match="a replay"):
        await email.receive(signed)
    stale = kit.kit.build({"clock": FakeClock(kit.FAKE_EPOCH.replace(hour=1))})
    with pytest.raises(SignatureError, match="away from now"):
        await stale.receive(kit.sign(kit.webhook(kit.mailgun_event("delivered", "d2"))))


async def test_webhooks_need_their_keys() -> None:
    bare = EmailChannel(EmailConfig(from_address="a@b.example"), transport=kit.FakeMailer())
    for body in (
        kit.sendgrid({"event": "open"}),
        kit.mailgun_event("opened", "o1"),
        kit.raw_email(),
    ):
        with pytest.raises(SignatureError, match=r"no .* is set"):
            await bare.receive(kit.sign(kit.webhook(body)))


async def test_sendgrid_timestamp_is_part_of_the_signature() -> None:
    email = kit.kit.build({"clock": FakeClock()})
    signed = kit.sign(kit.webhook(kit.sendgrid({"event": "open", "sg_event_id": "o"})))
    moved = signed.with_headers(**{SENDGRID_TIMESTAMP: str(int(kit.SIGNED_AT) + 1)})
    with pytest.raises(SignatureError):
        await email.receive(moved)


async def test_mail_bombs_and_garbage_are_refused() -> None:
    config = kit.CONFIG.model_copy(update={"max_message_bytes": 10_000})
    email = EmailChannel(config, transport=kit.FakeMailer(), clock=FakeClock())
    with pytest.raises(PayloadTooLargeError):
        await email.receive_raw(kit.raw_email("x" * 20_000))
    bomb = EmailChannel(kit.CONFIG, transport=kit.FakeMailer(), clock=FakeClock())
    nested = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\npart\r\n" for _ in range(300))
    headers = (
        b"From: a@b.example\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    )
    with pytest.raises(PayloadError, match="MIME parts"):
        await bomb.receive_raw(headers + nested + b"--b--\r\n")
    with pytest.raises(PayloadError, match="no valid From"):
        await bomb.receive_raw(b"Subject: hi\r\n\r\nno sender")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("New answer\n\nOn Tue, 3 Mar 2026, Support <s@x> wrote:\n> old", "New answer"),
        ("New answer\n\nOn Tue, 3 Mar 2026, Support\n<s@x> wrote:\n> old", "New answer"),
        ("Answer\n\n-----Original Message-----\nFrom: s@x\nold", "Answer"),
        ("Answer\n________________________________\nFrom: Support\nSent: Monday", "Answer"),
        ("Answer\n-- \nAna Lima\nCEO", "Answer"),
        ("Answer\n> quoted\n> more", "Answer"),
        ("> inline question\nInline answer", "> inline question\nInline answer"),
    ],
)
def test_quote_stripping(text: str, expected: str) -> None:
    assert strip_quoted(text) == expected


async def test_duplicate_suppression_events_are_reported() -> None:
    email = kit.kit.build({"clock": FakeClock()})
    body = kit.sendgrid({"event": "spamreport", "sg_event_id": "s1"})
    first = await email.receive(kit.sign(kit.webhook(body)))
    again = await email.receive(kit.sign(kit.webhook(body)))
    assert first.events and again.duplicates
    assert json.loads(first.events[0].model_dump_json())["type"] == "suppressed"
