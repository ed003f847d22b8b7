"""Hostile email input: every over-cap or malformed message is a fast PayloadError, the
parsers never hold up the event loop, and an email identity is one mailbox."""

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest

from chatbridge import (
    Channel,
    Event,
    FakeClock,
    Identity,
    Media,
    MediaKind,
    Message,
    MessageInvalidError,
    MessageReceived,
    PayloadError,
    WebhookRequest,
)
from chatbridge.email import EmailChannel, kit
from chatbridge.email.signature import mailgun_signature
from chatbridge.server.app import WebhookApp
from chatbridge.whatsapp import kit as whatsapp_kit

pytestmark = pytest.mark.anyio
HEAD = b"From: ana@customer.example\r\nMIME-Version: 1.0\r\n"


def channel() -> EmailChannel:
    return kit.kit.build({"clock": FakeClock()})


def many_addresses(count: int) -> bytes:
    senders = ", ".join(f"u{i}@x{i}.example" for i in range(count))
    return f"From: {senders}\r\nSubject: hi\r\n\r\nbody\r\n".encode()


def nested_multipart(depth: int) -> bytes:
    opening = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(depth)
    )
    inner = b"--b%d\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b%d--\r\n" % (depth, depth)
    return HEAD + b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n" + opening + inner


def nested_messages(depth: int) -> bytes:
    return HEAD + b"Content-Type: message/rfc822\r\n\r\n" * depth + b"\r\nbody\r\n"


async def refused_fast(receive: Awaitable[Any], match: str) -> None:
    start = time.perf_counter()
    with pytest.raises(PayloadError, match=match):
        await receive
    assert time.perf_counter() - start < 0.5


async def test_40000_addresses_in_from_are_refused_fast() -> None:
    await refused_fast(channel().receive_raw(many_addresses(40_000)), "header")


async def test_40000_addresses_in_signed_mailgun_body_mime_are_refused_fast() -> None:
    request = kit.sign(kit.webhook(many_addresses(40_000)))
    await refused_fast(channel().receive(request), "header")


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"From: " + b"a@b.c," * 1500 + b"\r\n\r\nx", "addresses"),
        (b"From: " + b"," * 60_000 + b"\r\n\r\nx", "header is over"),
        (b"From: " + b"(" * 3000 + b"a@b.example\r\n\r\nx", "no valid From"),
        (HEAD + b"X-A: b\r\n" * 600 + b"\r\nx", "headers in one block"),
        (HEAD + b"X-A: " + b"b" * 20_000 + b"\r\n\r\nx", "header is over"),
        (HEAD + (b"X-A: " + b"b" * 10_000 + b"\r\n") * 30 + b"\r\nx", "headers are over"),
    ],
    ids=["1500-addresses", "60k-commas", "nested-comments", "600-headers", "20k-header", "300k"],
)
async def test_hostile_headers_are_refused_fast(raw: bytes, match: str) -> None:
    await refused_fast(channel().receive_raw(raw), match)


async def test_comments_in_content_type_are_read_without_recursion() -> None:
    """The stdlib's structured parser recursed on these; chatbridge reads MIME headers
    by string splitting."""
    raw = HEAD + b"Content-Type: text/plain; a=" + b"(" * 3000 + b"\r\n\r\nstill here"
    start = time.perf_counter()
    event = (await channel().receive_raw(raw)).events[0]
    assert isinstance(event, MessageReceived) and event.message.text == "still here"
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("build", [nested_multipart, nested_messages])
async def test_3000_deep_mime_is_a_payload_error(build: Callable[[int], bytes]) -> None:
    await refused_fast(channel().receive_raw(build(3000)), "deeper than")
    await refused_fast(channel().receive(kit.sign(kit.webhook(build(3000)))), "deeper than")
    event = (await channel().receive_raw(build(5))).events[0]
    assert isinstance(event, MessageReceived)


async def test_boundary_tricks_are_counted_like_the_stdlib() -> None:
    """Parts whose headers lack the blank line, CR-only line ends, digests whose parts
    default to message/rfc822: all still count towards the caps."""
    no_blank = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n" % (i, i + 1) for i in range(40)
    )
    cr_only = nested_multipart(40).replace(b"\r\n", b"\r")
    digest = b"".join(
        b"--d%d\r\n\r\nContent-Type: multipart/digest; boundary=d%d\r\n\r\n" % (i, i + 1)
        for i in range(20)
    )
    for raw in (
        HEAD + b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n" + no_blank,
        cr_only,
        HEAD + b"Content-Type: multipart/digest; boundary=d0\r\n\r\n" + digest,
    ):
        await refused_fast(channel().receive_raw(raw), "deeper than")


async def test_deep_json_mailgun_event_is_a_payload_error() -> None:
    body = b'{"signature": {}, "event-data": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    request = WebhookRequest("POST", kit.WEBHOOK_URL, {"content-type": "application/json"}, body)
    await refused_fast(channel().receive(request), "JSON|deeper than")


def mailgun_form(
    boundary: str, fields: dict[str, str], files: list[tuple[str, str, str, bytes]]
) -> WebhookRequest:
    token = "t" * 50
    signed = {
        "timestamp": kit.SIGNED_AT,
        "token": token,
        "signature": mailgun_signature(kit.MAILGUN_SIGNING_KEY, kit.SIGNED_AT, token),
    }
    body = b"".join(
        b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
        % (boundary.encode(), name.encode(), value.encode())
        for name, value in {**fields, **signed}.items()
    )
    for name, filename, mime_type, data in files:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{filename}"\r\nContent-Type: {mime_type}\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    body += f"--{boundary}--\r\n".encode()
    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    return WebhookRequest("POST", kit.WEBHOOK_URL, headers, body)


async def test_mailgun_binary_attachments_keep_their_exact_bytes() -> None:
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 40 + b"\r\n--\r\n\xff\xd9"
    pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes(range(255, -1, -1)) * 40 + b"\r\n%%EOF\r\n"
    request = mailgun_form(
        "----mgBoundary1234",
        {"sender": "ana@customer.example", "subject": "Photos", "body-plain": "attached"},
        [
            ("attachment-1", "lid.jpg", "image/jpeg", jpeg),
            ("attachment-2", "invoice.pdf", "application/pdf", pdf),
        ],
    )
    event = (await channel().receive(request)).events[0]
    assert isinstance(event, MessageReceived)
    first, second = event.message.media
    assert (first.data, first.mime_type, first.filename) == (jpeg, "image/jpeg", "lid.jpg")
    assert (second.data, second.filename, second.size) == (pdf, "invoice.pdf", len(pdf))


async def test_multipart_form_over_the_limits_is_a_payload_error() -> None:
    fields = {f"f{i}": "x" for i in range(1001)}
    await refused_fast(channel().receive(mailgun_form("b", fields, [])), "more than 1000 fields")
    truncated = mailgun_form("b", {"sender": "ana@customer.example"}, [])
    truncated = WebhookRequest("POST", truncated.url, truncated.headers, truncated.body[:-6])
    await refused_fast(channel().receive(truncated), "closing boundary")


async def test_mime_attachments_keep_their_bytes() -> None:
    data = bytes(range(256)) * 64
    raw = kit.raw_email("see", attachment=("photo.jpg", "image/jpeg", data), message_id="b@c")
    event = (await channel().receive_raw(raw)).events[0]
    assert isinstance(event, MessageReceived)
    [media] = event.message.media
    assert media.data == data and media.kind is MediaKind.IMAGE


@pytest.mark.parametrize(
    "address",
    [
        "ana@x.example, eve@y.example",
        "ana@x.example; eve@y.example",
        "ana@x.example\r\nBcc: eve@y.example",
        "ana@x.example\n",
        "Ana <ana@x.example>",
        "not-an-address",
        "ana@",
        "a" * 65 + "@x.example",
    ],
)
async def test_email_identities_are_one_mailbox(address: str) -> None:
    email = channel()
    with pytest.raises(MessageInvalidError):
        email.identity(address)
    forged = Identity(channel="email", address=address)
    with pytest.raises(MessageInvalidError):
        await email.send(Message(contact=forged, text="hi"))
    assert not email.transport.sent  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "message",
    [
        {"subject": "Hi\r\nBcc: eve@y.example"},
        {"reply_to": "id@x\nBcc: eve@y.example"},
        {"media": [Media(kind=MediaKind.FILE, data=b"x", filename="a\r\nb.txt")]},
    ],
)
async def test_crlf_in_headers_is_refused_before_smtp(message: dict[str, Any]) -> None:
    email = channel()
    with pytest.raises(MessageInvalidError, match="CR or LF"):
        await email.send(Message(contact=email.identity(kit.CUSTOMER), text="hi", **message))
    assert not email.transport.sent  # type: ignore[attr-defined]


async def test_a_hostile_email_keeps_other_routes_answering() -> None:
    """A 20 MB email being parsed (form, then MIME, in worker threads) while WhatsApp
    posts: the WhatsApp request is answered within 0.5 s."""

    async def handler(event: Event, channel: Channel) -> None:
        pass

    email, whatsapp = channel(), whatsapp_kit.kit.build({"clock": FakeClock()})
    app = WebhookApp({"email": email, "other": whatsapp}, handler)
    parts = b"".join(
        b"--p\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + b"QUJD" * 25_000 + b"\r\n"
        for _ in range(190)
    )
    raw = HEAD + b"Content-Type: multipart/mixed; boundary=p\r\n\r\n" + parts + b"--p--\r\n"
    hostile = kit.sign(kit.webhook(raw))
    valid = whatsapp_kit.sign(whatsapp_kit.webhook(whatsapp_kit.inbound("text", {"body": "hi"})))
    timings: dict[str, float] = {}

    async def post(http: httpx.AsyncClient, name: str, request: WebhookRequest) -> None:
        start = time.perf_counter()
        response = await http.post(f"/{name}", content=request.body, headers=request.headers)
        timings[name] = time.perf_counter() - start
        assert response.status_code == 200, response.text

    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="https://hooks.example") as http,
        anyio.create_task_group() as group,
    ):
        group.start_soon(post, http, "email", hostile)
        await anyio.sleep(0.05)
        group.start_soon(post, http, "other", valid)
    assert timings["other"] < 0.5
    assert timings["email"] > timings["other"]
