"""Fault injection: the server is killed (SIGKILL) at each step of receive -> queue ->
handle, restarted, and the provider retries as providers do. Every acknowledged event
reaches the handler at least once, and none twice except after a crash mid-handler."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import anyio
import httpx
import pytest

from chatbridge.clock import SystemClock
from chatbridge.models import MessageReceived
from chatbridge.server.app import WebhookApp
from chatbridge.server.outbox import Incoming, Mark, SQLiteOutbox, records
from chatbridge.whatsapp import kit
from tests.crash_server import STEPS
from tests.loopback import free_port, wait_for
from tests.poison_worker import LEASE

EVENTS = 4


class Server:
    """The crash server as a supervisor runs it: restarted whenever it dies."""

    def __init__(self, outbox: str, crash_at: str, workdir: Path) -> None:
        self.port = free_port()
        self.args = [str(self.port), outbox, crash_at, str(workdir)]
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/whatsapp"

    def ensure_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(  # noqa: S603 (this interpreter, fixed args)
                [sys.executable, "-m", "tests.crash_server", *self.args]
            )
            self.starts += 1
            wait_for(self.url)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


def deliver_like_a_provider(server: Server, body: bytes) -> None:
    """POST until answered 2xx, restarting the server when it is down."""
    request = kit.sign(kit.webhook(body))
    for _ in range(20):
        server.ensure_running()
        try:
            answer = httpx.post(server.url, content=body, headers=dict(request.headers), timeout=5)
        except httpx.TransportError:
            continue
        if answer.is_success:
            return
    raise AssertionError("the webhook was never acknowledged")


def handled(workdir: Path, expected: set[str], server: Server) -> Counter[str]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        server.ensure_running()  # a crash in the worker is restarted too
        log = workdir / "handled"
        seen = Counter(log.read_text().split()) if log.exists() else Counter[str]()
        if expected <= set(seen):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"not handled: {expected - set(seen)}")


@pytest.mark.parametrize("crash_at", STEPS)
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_every_acknowledged_event_is_handled_after_a_crash(
    backend: str, crash_at: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    outbox = "sqlite"
    if backend == "redis":
        outbox = f"{request.getfixturevalue('redis_url')}#crash{uuid4().hex}:"
    server = Server(outbox, crash_at, tmp_path)
    bodies = [kit.inbound("text", {"body": f"m{n}"}, at=kit._T0 + n) for n in range(EVENTS)]
    try:
        for body in bodies:
            deliver_like_a_provider(server, body)
            deliver_like_a_provider(server, body)  # a redelivery, deduplicated
        ids = {f"wamid.text.{kit._T0 + n}.{kit.CUSTOMER}" for n in range(EVENTS)}
        seen = handled(tmp_path, ids, server)
    finally:
        server.stop()
    assert (tmp_path / f"crashed-{crash_at}").exists() and server.starts == 2
    assert set(seen) == ids
    twice = [event_id for event_id, count in seen.items() if count > 1]
    assert len(twice) <= (1 if crash_at in ("in-handler", "before-ack") else 0), seen


def test_an_event_that_kills_its_worker_costs_the_events_beside_it_nothing(
    tmp_path: Path,
) -> None:
    """Each crash abandons the worker's whole take; the next worker handles what comes
    back one item at a time, so the poison is dead-lettered after ``max_attempts`` and
    the others, before or after it (one of its contact), are handled once."""
    outbox_path, log = tmp_path / "outbox.db", tmp_path / "handled"
    spec = [("ok-a", "1"), ("poison", "2"), ("after-poison", "2"), ("ok-b", "3")]

    async def queue() -> SQLiteOutbox:
        outbox = SQLiteOutbox(outbox_path, LEASE)
        now = SystemClock().now()
        await outbox.accept(
            [
                Incoming(
                    Mark(event_id, now + timedelta(days=1)),
                    records.Record("whatsapp", _message(event_id, address), now),
                )
                for event_id, address in spec
            ],
            now,
        )
        return outbox

    outbox = anyio.run(queue)
    for _ in range(WebhookApp.__init__.__kwdefaults__["max_attempts"] + 2):
        subprocess.run(  # noqa: S603 (this interpreter, fixed args)
            [sys.executable, "-m", "tests.poison_worker", str(outbox_path), str(log)], check=False
        )
        time.sleep(LEASE.total_seconds() + 0.05)
    assert Counter(log.read_text().split()) == Counter(
        {"poison": 5, "ok-a": 1, "after-poison": 1, "ok-b": 1}
    )
    [dead] = anyio.run(outbox.dead_letters)
    assert records.decode(dead.item.payload).event.event_id == "poison"
    assert anyio.run(outbox.pending)[0] == 0


def _message(event_id: str, address: str) -> MessageReceived:
    who = {"channel": "whatsapp", "address": address}
    return MessageReceived.model_validate(
        {
            "channel": "whatsapp",
            "event_id": event_id,
            "timestamp": SystemClock().now(),
            "contact": who,
            "message": {"contact": who, "text": "hi"},
        }
    )
