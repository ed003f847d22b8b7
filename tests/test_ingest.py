"""Lossless ingest through the webhook app: any event can be queued (binary media
included), a record that cannot be read is dead-lettered without blocking the ones
behind it, and window state is applied by the worker before the handler runs."""

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from chatbridge import Channel, Event, FakeClock, MessageReceived
from chatbridge.email import kit as email_kit
from chatbridge.line import kit as line_kit
from chatbridge.models import Identity, UnknownEvent, WindowState
from chatbridge.server.app import WebhookApp
from chatbridge.server.outbox import Incoming, Mark, MemoryOutbox, SQLiteOutbox, records
from chatbridge.sms.twilio import kit as twilio_kit
from chatbridge.webhook import WebhookRequest
from chatbridge.whatsapp import kit as whatsapp_kit

pytestmark = pytest.mark.anyio
JPEG = bytes.fromhex("ffd8ffe000104a464946") + bytes(range(256)) * 4 + b"\xff\xd9"
PDF = b"%PDF-1.7\n\x00\x80\xff binary \xfe\n%%EOF"


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.windows: list[WindowState] = []

    async def __call__(self, event: Event, channel: Channel) -> None:
        self.events.append(event)
        if event.contact is not None and channel.rules.window is not None:
            self.windows.append((await channel.window(event.contact)).state)


def app_for(**channels: Channel) -> tuple[WebhookApp, Recorder, MemoryOutbox]:
    handler, outbox = Recorder(), MemoryOutbox()
    return WebhookApp(channels, handler, outbox=outbox), handler, outbox


async def post(app: WebhookApp, request: WebhookRequest) -> httpx.Response:
    """POST ``request`` to its own URL (its last path segment is the route)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        return await http.post(request.url, content=request.body, headers=dict(request.headers))


async def test_a_signed_email_with_binary_attachments_reaches_the_handler_intact() -> None:
    clock = FakeClock()
    app, handler, _ = app_for(email=email_kit.kit.build({"clock": clock}))
    app.clock = clock
    for name, mime_type, data in (
        ("photo.jpg", "image/jpeg", JPEG),
        ("a.pdf", "application/pdf", PDF),
    ):
        raw = email_kit.raw_email(message_id=f"{name}@c", attachment=(name, mime_type, data))
        response = await post(app, email_kit.sign(email_kit.webhook(raw)))
        assert response.status_code == 200, response.text
    await app.drain()
    received = [e for e in handler.events if isinstance(e, MessageReceived)]
    assert [m.data for e in received for m in e.message.media] == [JPEG, PDF]


async def test_an_unreadable_record_is_dead_lettered_and_does_not_block_the_next() -> None:
    app, handler, outbox = app_for(whatsapp=whatsapp_kit.kit.build({}))
    at = app.clock.now()
    later = Mark("k3", at + timedelta(days=1))
    await outbox.accept(
        [
            Incoming(Mark("k1", later.expires_at), b'{"v": 1, "route": "whatsapp", "event": {'),
            Incoming(Mark("k2", later.expires_at), b'{"v": 99, "route": "whatsapp"}'),
            Incoming(later, records.encode("whatsapp", _event())),
        ],
        at,
    )
    await app.drain()
    assert [e.event_id for e in handler.events] == ["wamid.later"]
    first, second = await outbox.dead_letters()
    assert first.error.startswith("RecordError: unreadable record")
    assert "record version 99 is from a newer chatbridge" in second.error


async def test_the_worker_applies_state_before_the_handler_runs() -> None:
    clock = FakeClock()
    app, handler, _ = app_for(whatsapp=whatsapp_kit.kit.build({"clock": clock}))
    app.clock = clock
    body = whatsapp_kit.inbound("text", {"body": "hi"})
    response = await post(app, whatsapp_kit.sign(whatsapp_kit.webhook(body)))
    assert response.status_code == 200
    await app.drain()
    assert handler.windows == [WindowState.OPEN]


def _event() -> MessageReceived:
    return MessageReceived.model_validate(
        {
            "channel": "whatsapp",
            "event_id": "wamid.later",
            "timestamp": FakeClock().now(),
            "contact": Identity(channel="whatsapp", address="1"),
            "message": {"contact": {"channel": "whatsapp", "address": "1"}, "text": "later"},
        }
    )


async def test_an_sms_keyword_is_answered_through_the_app_once() -> None:
    clock = FakeClock()
    app, _, _ = app_for(sms=twilio_kit.kit.build({"clock": clock}))
    app.clock = clock
    request = twilio_kit.sign(twilio_kit.webhook(twilio_kit.incoming("HELP", sid="SMhelp")))
    first = await post(app, request)
    assert first.status_code == 200 and "Reply STOP" in first.text  # TwiML <Message>
    again = await post(app, request)
    assert again.status_code == 200 and "Reply STOP" not in again.text  # a redelivery


async def test_a_replayed_mailgun_token_is_refused_by_the_app() -> None:
    clock = FakeClock()
    app, _, outbox = app_for(email=email_kit.kit.build({"clock": clock}))
    app.clock = clock
    signed = email_kit.sign(email_kit.webhook(email_kit.mailgun_event("delivered", "d1")))
    assert (await post(app, signed)).status_code == 200
    replayed = await post(app, signed)
    assert replayed.status_code == 401 and "replay" in replayed.text
    assert len(await outbox.due(clock.now(), 10)) == 1


async def test_nan_and_infinite_numbers_survive_the_queue() -> None:
    app, handler, _ = app_for(whatsapp=whatsapp_kit.kit.build({}))
    location = {"latitude": "NaN", "longitude": "Infinity"}
    body = whatsapp_kit.inbound("location", location).replace(b'"NaN"', b"NaN")
    body = body.replace(b'"Infinity"', b"Infinity")
    assert (await post(app, whatsapp_kit.sign(whatsapp_kit.webhook(body)))).status_code == 200
    await app.drain()
    [event] = handler.events
    assert isinstance(event, MessageReceived) and event.message.location is not None
    assert math.isnan(event.message.location.latitude)
    assert math.isinf(event.message.location.longitude)


async def test_an_event_that_cannot_be_written_is_queued_as_unknown_with_the_reason() -> None:
    deep: dict[str, object] = {}
    for _ in range(300):
        deep = {"a": deep}
    event = _event().model_copy(update={"raw": deep})
    [stored] = [records.decode(records.encode("whatsapp", event))[1]]
    assert isinstance(stored, UnknownEvent) and stored.event_id == "wamid.later"
    assert "could not be stored" in stored.reason


class Unprintable(Exception):
    def __str__(self) -> str:
        return "bad \udcff text"


async def test_a_handler_error_any_outbox_cannot_store_does_not_stall_the_queue(
    tmp_path: Path,
) -> None:
    calls: list[str] = []

    async def handler(event: Event, channel: Channel) -> None:
        calls.append(event.event_id)
        if event.event_id == "e0":
            raise Unprintable

    outbox = SQLiteOutbox(tmp_path / "o.db")
    app = WebhookApp(
        {"whatsapp": whatsapp_kit.kit.build({})}, handler, outbox=outbox, max_attempts=1
    )
    at = app.clock.now()
    await outbox.accept(
        [
            Incoming(Mark(f"k{n}", at + timedelta(days=1)), records.encode("whatsapp", e))
            for n, e in enumerate(
                _event().model_copy(update={"event_id": f"e{n}"}) for n in range(3)
            )
        ],
        at,
    )
    await app.drain()
    assert calls == ["e0", "e1", "e2"]
    [dead] = await outbox.dead_letters()
    assert dead.error == "Unprintable: bad ? text"
    await outbox.aclose()


async def test_each_record_is_leased_only_while_it_is_handled(tmp_path: Path) -> None:
    """Two workers share a queue; handling takes most of a lease: nothing runs twice."""
    calls: list[str] = []

    async def slow(event: Event, channel: Channel) -> None:
        calls.append(event.event_id)
        await anyio.sleep(0.3)

    path = tmp_path / "o.db"
    first, second = (SQLiteOutbox(path, lease=timedelta(seconds=0.5)) for _ in range(2))
    apps = [
        WebhookApp({"whatsapp": whatsapp_kit.kit.build({})}, slow, outbox=outbox)
        for outbox in (first, second)
    ]
    at = apps[0].clock.now()
    events = [_event().model_copy(update={"event_id": f"e{n}"}) for n in range(3)]
    await first.accept(
        [
            Incoming(Mark(e.event_id, at + timedelta(days=1)), records.encode("whatsapp", e))
            for e in events
        ],
        at,
    )
    async with anyio.create_task_group() as group:
        for app in apps:
            group.start_soon(app.drain)
    assert sorted(calls) == ["e0", "e1", "e2"]
    for outbox in (first, second):
        await outbox.aclose()


async def test_an_event_whose_workers_keep_dying_is_dead_lettered_not_retaken_forever() -> None:
    """A record that crashes the process leaves its lease unsettled each time: each
    take after an abandoned one counts an attempt, and at ``max_attempts`` the worker
    dead-letters it without calling the handler (the next crash would be the same)."""
    clock = FakeClock()
    app, handler, outbox = app_for(whatsapp=whatsapp_kit.kit.build({"clock": clock}))
    app.clock = clock
    accepted = await outbox.accept(
        [
            Incoming(
                Mark("k", clock.now() + timedelta(days=1)),
                records.Record("whatsapp", _event(), clock.now()),
            )
        ],
        clock.now(),
    )
    assert accepted == [True]
    for _ in range(app.max_attempts):  # taken, then its worker died
        assert len(await outbox.due(clock.now(), 10)) == 1
        clock.advance(outbox.lease)
    await app.drain()
    assert handler.events == []
    [dead] = await outbox.dead_letters()
    assert dead.error == f"its worker stopped during {app.max_attempts} attempts"


def _queued(
    event_ids: list[str], addresses: list[str], now: datetime, **update: Any
) -> list[Incoming]:
    return [
        Incoming(
            Mark(event_id, now + timedelta(days=1)),
            records.Record(
                update.get("channel", "whatsapp"),
                _event().model_copy(
                    update={
                        "event_id": event_id,
                        "contact": Identity(channel=update.get("channel", "whatsapp"), address=a),
                        **{k: (v(n) if callable(v) else v) for k, v in update.items()},
                    }
                ),
                now,
            ),
        )
        for n, (event_id, a) in enumerate(zip(event_ids, addresses, strict=True))
    ]


async def test_each_handler_sees_the_reply_token_of_its_own_event() -> None:
    """A contact's events taken together are applied one by one when they carry more
    than a window (here LINE reply tokens): each reply is free, none takes the next one's
    token."""
    used: list[tuple[str, str | None]] = []

    async def reply(event: Event, channel: Channel) -> None:
        assert event.contact is not None
        state = await channel.store.contact_state(event.contact)
        used.append((event.event_id, state.reply_token))
        await channel.store.update_contact_state(event.contact, reply_token=None)

    outbox = MemoryOutbox()
    app = WebhookApp({"line": line_kit.kit.build()}, reply, outbox=outbox)
    now = app.clock.now()
    queued = _queued(
        ["m1", "m2"], ["U1", "U1"], now, channel="line", reply_token=lambda n: f"token-{n + 1}"
    )
    await outbox.accept(queued, now)
    await app.drain()
    assert used == [("m1", "token-1"), ("m2", "token-2")]


async def test_an_outbox_failure_in_one_lane_leaves_the_other_lanes_running() -> None:
    class Flaky(MemoryOutbox):
        async def retry(self, item_id: str, at: datetime, error: str) -> None:
            raise ConnectionError("the outbox is down for a moment")

    log: list[tuple[str, str]] = []

    async def handle(event: Event, channel: Channel) -> None:
        log.append(("start", event.event_id))
        if event.event_id == "bad":
            raise ValueError("boom")
        await anyio.sleep(0.1)
        log.append(("end", event.event_id))

    outbox = Flaky()
    app = WebhookApp({"whatsapp": whatsapp_kit.kit.build()}, handle, outbox=outbox)
    now = app.clock.now()
    await outbox.accept(_queued(["good1", "bad", "good2"], ["1", "2", "3"], now), now)
    await app.drain()
    assert sorted(log) == sorted(
        [
            ("start", "good1"),
            ("start", "bad"),
            ("start", "good2"),
            ("end", "good1"),
            ("end", "good2"),
        ]
    )
    assert (await outbox.pending())[0] == 1  # bad: leased, back after its lease
