"""A worker whose handler kills its process on the event ``poison`` (as an OOM kill or a
crash in a C library would): ``python -m tests.poison_worker OUTBOX LOG``. It drains the
SQLite outbox at OUTBOX once, appending each handled event id to LOG."""

import os
import sys
from datetime import timedelta

import anyio

from chatbridge.channel import Channel
from chatbridge.models import Event
from chatbridge.server.app import WebhookApp
from chatbridge.server.outbox import SQLiteOutbox
from chatbridge.whatsapp import kit

LEASE = timedelta(seconds=0.3)


async def main(outbox: str, log: str) -> None:
    async def handle(event: Event, channel: Channel) -> None:
        with open(log, "a") as calls:  # noqa: ASYNC230 (a plain append is the point)
            calls.write(event.event_id + "\n")
        if event.event_id == "poison":
            await anyio.sleep(0.2)  # the others' acks are written meanwhile
            os._exit(1)

    app = WebhookApp({"whatsapp": kit.kit.build()}, handle, outbox=SQLiteOutbox(outbox, LEASE))
    await app.drain()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
