"""The ASGI webhook app: routing, handshakes, refusals, fast acknowledgement, retries
and dead letters (no event is lost when the handler fails)."""

from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import anyio
import httpx
import pytest

from chatbridge import Channel, Event, FakeClock, MessageReceived
from chatbridge.server.app import WebhookApp
from chatbridge.server.outbox import Incoming, Mark, MemoryOutbox, SQLiteOutbox
from chatbridge.whatsapp import kit

pytestmark = pytest.mark.anyio


class Recorder:
    def __init__(self, failures: int = 0) -> None:
        self.events: list[Event] = []
        self.failures = failures

    async def __call__(self, event: Event, channel: Channel) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("handler crashed")
        self.events.append(event)


def make(handler: Recorder, **options: object) -> tuple[WebhookApp, FakeClock]:
    clock = FakeClock()
    channel = kit.kit.build({"clock": clock})
    app = WebhookApp({"whatsapp": channel}, handler, clock=clock, poll_interval=0.01, **options)  # type: ignore[arg-type]
    return app, clock


@pytest.fixture
async def client() -> AsyncIterator[tuple[httpx.AsyncClient, WebhookApp, Recorder, FakeClock]]:
    handler = Recorder()
    app, clock = make(handler)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://hooks.example"
    ) as http:
        yield http, app, handler, clock


def signed(body: bytes) -> tuple[bytes, dict[str, str]]:
    request = kit.sign(kit.webhook(body))
    return request.body, dict(request.headers)


async def test_signed_webhook_is_acknowledged_then_handled(client: tuple) -> None:  # type: ignore[type-arg]
    http, app, handler, _ = client
    body, headers = signed(kit.inbound("text", {"body": "hi"}))
    response = await http.post("/whatsapp", content=body, headers=headers)
    assert response.status_code == 200
    assert not handler.events  # acknowledged before processing
    await app.drain()
    [event] = handler.events
    assert isinstance(event, MessageReceived) and event.message.text == "hi"
    again = await http.post("/whatsapp", content=body, headers=headers)
    assert again.status_code == 200
    await app.drain()
    assert len(handler.events) == 1  # the redelivery is deduplicated


async def test_handshake_and_refusals(client: tuple) -> None:  # type: ignore[type-arg]
    http, _, _, _ = client
    ok = await http.get(
        "/whatsapp",
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": "whatsapp-test-verify-token",
            "hub.challenge": "42",
        },
    )
    assert (ok.status_code, ok.text) == (200, "42")
    forged = await http.post(
        "/whatsapp", content=b"{}", headers={"X-Hub-Signature-256": "sha256=00"}
    )
    assert forged.status_code == 401 and "does not match" in forged.text
    assert (await http.put("/whatsapp", content=b"")).status_code == 405
    xml = await http.post("/whatsapp", content=b"<xml/>", headers={"content-type": "text/xml"})
    assert xml.status_code == 415 and "application/json" in xml.text
    assert (await http.post("/nowhere", content=b"")).status_code == 404
    big = b"x" * (kit.kit.build({}).max_body_bytes + 1)
    assert (await http.post("/whatsapp", content=big)).status_code == 413
    body, headers = signed(b"not json")
    bad = await http.post("/whatsapp", content=body, headers=headers)
    assert bad.status_code == 400 and "not a WhatsApp webhook" in bad.text


async def test_failing_handler_is_retried_then_dead_lettered(tmp_path: Path) -> None:
    handler = Recorder(failures=2)
    outbox = SQLiteOutbox(tmp_path / "outbox.db")
    app, clock = make(handler, outbox=outbox, max_attempts=3, backoff=timedelta(seconds=10))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://h.example"
    ) as http:
        body, headers = signed(kit.inbound("text", {"body": "keep me"}))
        assert (await http.post("/whatsapp", content=body, headers=headers)).status_code == 200
        await app.drain()
        assert not handler.events
        clock.advance(timedelta(seconds=10))
        await app.drain()
        assert not handler.events
        clock.advance(timedelta(seconds=20))
        await app.drain()
        assert len(handler.events) == 1
        handler.failures = 5
        body, headers = signed(kit.inbound("text", {"body": "poison"}, at=kit._T0 + 1))
        await http.post("/whatsapp", content=body, headers=headers)
        for _ in range(3):
            await app.drain()
            clock.advance(timedelta(minutes=1))
        [dead] = await outbox.dead_letters()
        assert b"poison" in dead.item.payload and "handler crashed" in dead.error
    await outbox.aclose()


class History:
    """A history (chatbridge.recorder.Recorder) keeping each call's events; a call
    with more than one event fails ``batch_failures`` times, one with ``poison`` always."""

    def __init__(self, batch_failures: int = 0, poison: str = "") -> None:
        self.calls: list[list[str]] = []
        self.batch_failures = batch_failures
        self.poison = poison

    async def record_events(self, events: Sequence[Event]) -> None:
        texts = [e.message.text or "" for e in events if isinstance(e, MessageReceived)]
        if len(events) > 1 and self.batch_failures:
            self.batch_failures -= 1
            raise RuntimeError("the history is down")
        if self.poison and self.poison in texts:
            raise RuntimeError("the history refuses it")
        self.calls.append(texts)

    async def record_send(self, send: object) -> None:
        raise AssertionError("nothing is sent here")

    async def open(self) -> None:
        pass


async def _post_from_senders(app: WebhookApp, texts: list[str]) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://h.example"
    ) as http:
        for n, text in enumerate(texts):
            body, headers = signed(kit.inbound("text", {"body": text}, sender=f"1555000{n:04d}"))
            assert (await http.post("/whatsapp", content=body, headers=headers)).status_code == 200


async def test_the_worker_records_a_batch_in_one_history_call() -> None:
    handler, history = Recorder(), History()
    clock = FakeClock()
    channel = kit.kit.build({"clock": clock, "history": history})
    app = WebhookApp({"whatsapp": channel}, handler, clock=clock)
    await _post_from_senders(app, ["one", "two", "three"])
    await app.drain()
    assert history.calls == [["one", "two", "three"]]  # three contacts: one call
    assert len(handler.events) == 3


async def test_when_a_batch_cannot_be_recorded_each_event_is_recorded_alone() -> None:
    handler, history = Recorder(), History(batch_failures=1, poison="two")
    clock = FakeClock()
    channel = kit.kit.build({"clock": clock, "history": history})
    app = WebhookApp({"whatsapp": channel}, handler, clock=clock, max_attempts=2)
    await _post_from_senders(app, ["one", "two", "three"])
    await app.drain()
    assert sorted(history.calls) == [["one"], ["three"]]  # the others are not held back
    assert {e.message.text for e in handler.events if isinstance(e, MessageReceived)} == {
        "one",
        "three",
    }
    clock.advance(timedelta(minutes=1))
    await app.drain()
    [dead] = await app.outbox.dead_letters()
    assert b"two" in dead.item.payload and "the history refuses it" in dead.error


async def test_a_batch_the_history_holds_up_is_recorded_event_by_event() -> None:
    """One customer locked elsewhere holds up the batch call: after ``record_timeout``
    each event is recorded alone, and only the held one waits."""

    class Held(History):
        async def record_events(self, events: Sequence[Event]) -> None:
            if len(events) > 1:
                await anyio.sleep_forever()
            await super().record_events(events)

    handler, history = Recorder(), Held()
    clock = FakeClock()
    channel = kit.kit.build({"clock": clock, "history": history})
    app = WebhookApp(
        {"whatsapp": channel}, handler, clock=clock, record_timeout=timedelta(seconds=0.1)
    )
    await _post_from_senders(app, ["one", "two"])
    with anyio.fail_after(5):
        await app.drain()
    assert sorted(history.calls) == [["one"], ["two"]]
    assert len(handler.events) == 2


async def test_worker_runs_under_lifespan() -> None:
    handler = Recorder()
    app, _ = make(handler)
    async with (
        app.running(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://h.example"
        ) as http,
    ):
        body, headers = signed(kit.inbound("text", {"body": "live"}))
        await http.post("/whatsapp", content=body, headers=headers)
        with anyio.fail_after(2):
            while not handler.events:  # noqa: ASYNC110 (polling the recorder is the test)
                await anyio.sleep(0.01)


class FlakyOutbox(MemoryOutbox):
    """An outbox whose first write fails (a full disk, a lost connection...)."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def accept(
        self, incoming: Sequence[Incoming], now: datetime, once: Sequence[Mark] = ()
    ) -> list[bool]:
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        return await super().accept(incoming, now, once)


async def test_an_event_the_outbox_could_not_take_is_not_acknowledged() -> None:
    handler = Recorder()
    app, _ = make(handler, outbox=FlakyOutbox())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://h.example"
    ) as http:
        body, headers = signed(kit.inbound("text", {"body": "do not lose me"}))
        failed = await http.post("/whatsapp", content=body, headers=headers)
        assert failed.status_code == 503  # not acknowledged: the provider will retry
        retried = await http.post("/whatsapp", content=body, headers=headers)
        assert retried.status_code == 200
        await app.drain()
    [event] = handler.events
    assert isinstance(event, MessageReceived) and event.message.text == "do not lose me"


@pytest.mark.parametrize("declared", ["\u00b2", "1" * 5000, "-1", " 7"])
async def test_a_malformed_content_length_is_refused(client: tuple, declared: str) -> None:  # type: ignore[type-arg]
    _, app, _, _ = client
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/whatsapp",
        "headers": [(b"content-length", declared.encode("latin-1"))],
    }
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 413
