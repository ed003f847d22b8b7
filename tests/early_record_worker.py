"""A webhook app process for the crash test of early recording:
``python -m tests.early_record_worker OUTBOX HISTORY LOG (crash | drain)``.

``crash``: runs the app (SQLite outbox at OUTBOX, SQLite history at HISTORY), posts
:data:`EVENTS` through it, and kills itself (SIGKILL) as soon as the history recorded
them all: the events are acknowledged and recorded, none handled (its handler takes its
time). ``drain``:
once the lease of what a dead process took has ended, handles what is due. The handler
appends each event id to LOG."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta

import anyio
import httpx

from chatbridge.channel import Channel
from chatbridge.conversations import History
from chatbridge.models import Event
from chatbridge.server.app import WebhookApp
from chatbridge.server.outbox import SQLiteOutbox
from chatbridge.whatsapp import kit

LEASE = timedelta(seconds=0.3)
#: (timestamp, sender) of the messages posted: one contact's.
EVENTS = [(kit._T0, "15550001"), (kit._T0 + 1, "15550001")]


class DyingHistory(History):
    """A history whose process dies once it recorded all of :data:`EVENTS`."""

    recorded = 0

    async def record_events(self, events: Sequence[Event]) -> None:
        await super().record_events(events)
        DyingHistory.recorded += len(events)
        if DyingHistory.recorded >= len(EVENTS):
            os.kill(os.getpid(), signal.SIGKILL)


async def main(outbox: str, history: str, log: str, mode: str) -> None:
    async def handle(event: Event, channel: Channel) -> None:
        if mode == "crash":
            await anyio.sleep(30)  # killed before it ends
        with open(log, "a") as handled:  # noqa: ASYNC230 (a plain append is the point)
            handled.write(event.event_id + "\n")

    kind = DyingHistory if mode == "crash" else History
    channel = kit.kit.build({"history": kind.sqlite(history)})
    app = WebhookApp(
        {"whatsapp": channel}, handle, outbox=SQLiteOutbox(outbox, LEASE), poll_interval=0.02
    )
    if mode == "drain":
        await anyio.sleep(LEASE.total_seconds() + 0.1)
        await app.drain()
        return
    async with app.running():
        with anyio.fail_after(10):
            while app._early.paused:  # noqa: ASYNC110 (until the worker found the outbox empty)
                await anyio.sleep(0.01)
        requests = [
            kit.sign(kit.webhook(kit.inbound("text", {"body": "hi"}, sender=who, at=at)))
            for at, who in EVENTS
        ]
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://h.example"
        ) as http:
            for request in requests:
                answer = await http.post("/whatsapp", content=request.body, headers=request.headers)
                assert answer.status_code == 200
        await anyio.sleep(10)  # killed before this ends
    raise SystemExit("the history was never called")


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:5])
