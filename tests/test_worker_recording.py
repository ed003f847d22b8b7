"""How the webhook app records events in a history: each event before its handler runs,
the intake recording what it acknowledged at once, ahead of the worker, without losing
order or events (after a crash neither)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest

from chatbridge import Channel, Event
from chatbridge.conversations import History
from chatbridge.models import Identity, MessageReceived
from chatbridge.server import app as app_module
from chatbridge.server.app import WebhookApp
from chatbridge.server.outbox import Incoming, Mark, records
from chatbridge.whatsapp import kit
from tests import early_record_worker

pytestmark = pytest.mark.anyio


class Log:
    """A history (chatbridge.recorder.Recorder) writing each call's event ids, and a
    handler writing each event it handles, to one log; ``held`` (an event id) keeps its
    handler waiting for ``release``; ``fail`` calls fail (their event ids logged)."""

    def __init__(self, held: str = "", fail: int = 0) -> None:
        self.log: list[tuple[str, list[str]]] = []
        self.recorded: set[str] = set()
        self.held, self.holding, self.release = held, anyio.Event(), anyio.Event()
        self.fail = fail
        self.slow: dict[str, float] = {}  # event id: how long a call with it takes
        self.started: list[list[str]] = []  # the calls that did not fail, as they start

    async def record_events(self, events: Sequence[Event]) -> None:
        ids = [event.event_id for event in events]
        if self.fail:
            self.fail -= 1
            self.log.append(("failed", ids))
            raise RuntimeError("the history is down")
        self.started.append(ids)
        await anyio.sleep(max((self.slow.get(i, 0.0) for i in ids), default=0.0))
        self.log.append(("record", ids))
        self.recorded.update(ids)

    async def record_send(self, send: object) -> None:
        raise AssertionError("nothing is sent here")

    async def open(self) -> None:
        pass

    async def __call__(self, event: Event, channel: Channel) -> None:
        assert event.event_id in self.recorded, f"{event.event_id} handled before recorded"
        if event.event_id == self.held:
            self.holding.set()
            await self.release.wait()
        self.log.append(("handle", [event.event_id]))

    def calls(self, kind: str) -> list[list[str]]:
        return [ids for what, ids in self.log if what == kind]

    def handled(self) -> list[str]:
        return [ids[0] for ids in self.calls("handle")]


def _app(log: Log, **options: object) -> WebhookApp:
    channel = kit.kit.build({"history": log})
    return WebhookApp({"whatsapp": channel}, log, poll_interval=0.02, **options)  # type: ignore[arg-type]


async def _queue(app: WebhookApp, *events: tuple[str, str]) -> None:
    """Queue (event id, sender) messages in the app's outbox, as the intake would."""
    now = app.clock.now()
    incoming = []
    for event_id, sender in events:
        who = {"channel": "whatsapp", "address": sender}
        event = MessageReceived.model_validate(
            {
                "channel": "whatsapp",
                "event_id": event_id,
                "timestamp": now,
                "contact": who,
                "message": {"contact": who, "text": event_id},
            }
        )
        mark = Mark(event_id, now + timedelta(days=1))
        incoming.append(Incoming(mark, records.Record("whatsapp", event, now)))
    await app.outbox.accept(incoming, now)


async def _post(app: WebhookApp, *messages: tuple[int, str]) -> None:
    """POST a kit webhook per (timestamp, sender): event id ``wamid.text.{at}.{sender}``."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://h.example"
    ) as http:
        for at, sender in messages:
            body = kit.inbound("text", {"body": "hi"}, sender=sender, at=at)
            request = kit.sign(kit.webhook(body))
            answer = await http.post("/whatsapp", content=request.body, headers=request.headers)
            assert answer.status_code == 200


def _id(at: int, sender: str) -> str:
    return f"wamid.text.{at}.{sender}"


async def _until(condition: Callable[[], object], seconds: float = 5) -> None:
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 (polling the state is the test)
            await anyio.sleep(0.005)


async def test_a_batch_that_could_not_be_recorded_is_handled_before_the_next_is_recorded() -> None:
    """Its handlers record its events contact by contact (with their state): the next
    batch's come after them."""
    log = Log(fail=1)
    app = _app(log, batch=2)
    await _queue(app, ("a1", "1"), ("a2", "1"), ("a3", "1"))
    await app.drain()
    assert log.log == [
        ("failed", ["a1", "a2"]),
        ("record", ["a1", "a2"]),
        ("handle", ["a1"]),
        ("handle", ["a2"]),
        ("record", ["a3"]),
        ("handle", ["a3"]),
    ]


async def test_acknowledged_events_are_recorded_at_once_while_a_handler_is_stuck() -> None:
    first = _id(kit._T0, "15550001")
    log = Log(held=first)
    app = _app(log)
    async with app.running():
        await _until(lambda: not app._early.paused)  # the outbox was found empty
        await _post(app, (kit._T0, "15550001"))
        await log.holding.wait()
        assert log.calls("record") == [[first]]
        later = [(kit._T0 + n, f"1555000{n % 3 + 1}") for n in range(1, 7)]
        await _post(app, *later)
        # The worker is held by the first event's handler: the intake recorded them.
        await _until(lambda: log.recorded == {first} | {_id(*m) for m in later})
        assert log.handled() == []
        log.release.set()
        await _until(lambda: len(log.handled()) == 7)
    recorded = [i for ids in log.calls("record") for i in ids]
    assert sorted(recorded) == sorted(log.recorded)  # each once: the worker did not again
    assert log.handled()[0] == first


async def test_a_backlog_in_the_outbox_is_recorded_before_what_comes_after_it() -> None:
    log = Log()
    app = _app(log)
    await _queue(app, ("old1", "15550001"), ("old2", "15550001"))
    log.slow["old1"] = 0.2  # the worker's call for the backlog takes a while
    new = _id(kit._T0, "15550001")
    async with app.running():
        await _until(lambda: log.started)  # the worker is recording the backlog now
        await _post(app, (kit._T0, "15550001"))
        await _until(lambda: len(log.handled()) == 3)
    assert log.calls("record") == [["old1", "old2"], [new]]
    assert log.handled() == ["old1", "old2", new]


async def test_what_the_intake_failed_to_record_is_recorded_by_the_worker_in_order() -> None:
    log = Log()
    app = _app(log)
    one, two = (_id(kit._T0 + n, "15550001") for n in range(2))
    async with app.running():
        await _until(lambda: not app._early.paused)
        log.fail = 1
        await _post(app, (kit._T0, "15550001"))
        await _until(lambda: len(log.handled()) == 1)
        await _until(lambda: not app._early.paused)  # the worker caught up
        await _post(app, (kit._T0 + 1, "15550001"))
        await _until(lambda: len(log.handled()) == 2)
    assert log.calls("failed") == [[one]]
    assert log.calls("record") == [[one], [two]]  # the worker's; then the intake's again
    assert log.handled() == [one, two]


def _message(event_id: str) -> MessageReceived:
    who = {"channel": "whatsapp", "address": "15550001"}
    return MessageReceived.model_validate(
        {
            "channel": "whatsapp",
            "event_id": event_id,
            "timestamp": kit.kit.build().clock.now(),
            "contact": who,
            "message": {"contact": who, "text": event_id},
        }
    )


async def test_the_intake_recorder_leaves_all_to_the_worker_until_it_caught_up() -> None:
    """It starts paused, and pauses after a failure: what comes meanwhile is the
    worker's to record (so each contact's events are recorded in order), until the
    worker found the outbox empty after that was accepted."""
    log = Log()
    early = app_module._EarlyRecorder(timeout=1)
    e1, e2, e3, e4 = (_message(f"e{n}") for n in range(1, 5))
    async with anyio.create_task_group() as group:
        group.start_soon(early.run)
        await _until(lambda: early.running)
        early.add(log, [e1])  # paused: the outbox may hold older events
        early.caught_up(early.accepted)  # the worker found it empty after e1 came
        assert await early.left(log, [e1]) == [e1]
        log.fail = 1
        early.add(log, [e2])
        await _until(lambda: log.calls("failed") == [["e2"]])
        before = early.accepted
        early.add(log, [e3])  # after the failure: the worker's
        early.caught_up(before)  # the outbox was empty before e3 came: not caught up
        early.add(log, [e4])
        await anyio.sleep(0.05)
        assert log.calls("record") == []
        assert await early.left(log, [e2, e3, e4]) == [e2, e3, e4]
        early.caught_up(early.accepted)
        early.add(log, [e1])
        await _until(lambda: log.calls("record") == [["e1"]])
        assert await early.left(log, [e1]) == []  # recorded: the worker does not again
        group.cancel_scope.cancel()
    assert not early.running


async def test_a_recorder_stopped_mid_call_leaves_nothing_for_the_worker_to_wait_on() -> None:
    log = Log()
    log.slow["e1"] = 10
    early = app_module._EarlyRecorder(timeout=5)
    e1 = _message("e1")
    async with anyio.create_task_group() as group:
        group.start_soon(early.run)
        await _until(lambda: early.running)
        early.caught_up(early.accepted)
        early.add(log, [e1])
        await _until(lambda: log.started)
        group.cancel_scope.cancel()
    with anyio.fail_after(0.5):  # not the record timeout, spinning
        assert await early.left(log, [e1]) == [e1]


async def test_a_busy_intake_comes_first_and_what_piles_up_is_left_to_the_worker() -> None:
    log = Log()
    busy = True
    early = app_module._EarlyRecorder(timeout=1, busy=lambda: busy)
    async with anyio.create_task_group() as group:
        group.start_soon(early.run)
        await _until(lambda: early.running)
        early.caught_up(early.accepted)
        early.add(log, [_message("e1")])
        await anyio.sleep(0.05)
        assert log.calls("record") == []  # the intake is busy: it waits
        busy = False
        await _until(lambda: log.calls("record") == [["e1"]])
        busy = True
        early.add(log, [_message(f"m{n}") for n in range(early.LIMIT + 1)])
        assert early.paused  # too many waiting: the worker's, in order
        group.cancel_scope.cancel()


async def test_only_webhooks_taking_cpu_make_the_intake_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Busy: more than BUSY webhooks being read, verified or parsed. Those waiting for
    the outbox's commit (its disk sync) do not count, unless more than BACKLOG wait
    (the outbox falls behind): early recording does not wait on the disk alone."""
    app = _app(Log())
    count = app_module._EarlyRecorder.BUSY + 2
    synced, arrived = anyio.Event(), anyio.Event()
    accept = app.outbox.accept

    async def slow_accept(*args: object, **options: object) -> list[bool]:
        await synced.wait()
        return await accept(*args, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(app.outbox, "accept", slow_accept)

    async def body() -> dict[str, object]:
        await arrived.wait()
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def ignore(message: object) -> None:
        pass

    scope = {"type": "http", "method": "POST", "path": "/whatsapp", "headers": [],
             "query_string": b"", "scheme": "https", "root_path": ""}  # fmt: skip
    async with anyio.create_task_group() as group:
        for n in range(count):
            group.start_soon(_post, app, (kit._T0 + n, "15550001"))
        await _until(lambda: app._committing == count)
        assert not app._busy()
        backlog = app_module._EarlyRecorder.BACKLOG
        monkeypatch.setattr(app_module._EarlyRecorder, "BACKLOG", count - 1)
        assert app._busy()  # the outbox falls behind
        monkeypatch.setattr(app_module._EarlyRecorder, "BACKLOG", backlog)
        for _ in range(count):  # their bodies still coming
            group.start_soon(app, scope, body, ignore)
        await _until(lambda: app._in_flight == 2 * count)
        assert app._busy()
        synced.set()
        arrived.set()
    assert (app._in_flight, app._committing) == (0, 0)


async def test_without_history_nothing_is_recorded_early() -> None:
    handled: list[str] = []

    async def handler(event: Event, channel: Channel) -> None:
        handled.append(event.event_id)

    app = WebhookApp({"whatsapp": kit.kit.build()}, handler, poll_interval=0.02)
    async with app.running():
        await _post(app, (kit._T0, "15550001"))
        await _until(lambda: handled == [_id(kit._T0, "15550001")])
    assert app._early.accepted == 0


def test_an_event_recorded_at_once_then_lost_in_a_crash_is_handled_and_recorded_once(
    tmp_path: Path,
) -> None:
    """The process dies (SIGKILL) right after the intake recorded two events, before
    their handlers: the next process takes them from the outbox once their lease ended,
    finds them recorded, handles each once, and the history has each once."""
    outbox, history, log = tmp_path / "outbox.db", tmp_path / "history.db", tmp_path / "handled"
    args = [sys.executable, "-m", "tests.early_record_worker", str(outbox), str(history), str(log)]
    crashed = subprocess.run([*args, "crash"], check=False, timeout=60)  # noqa: S603
    assert crashed.returncode == -9, crashed
    assert not log.exists()  # nothing handled
    subprocess.run([*args, "drain"], check=True, timeout=60)  # noqa: S603
    events = early_record_worker.EVENTS
    assert sorted(log.read_text().split()) == sorted(_id(at, who) for at, who in events)

    async def entries() -> list[str]:
        async with History.sqlite(history) as read:
            customer = Identity(channel="whatsapp", address=events[0][1])
            page = await read.timeline(customer)
            return [entry.message_id or "" for entry in page.entries]

    assert sorted(anyio.run(entries)) == sorted(_id(at, who) for at, who in events)
