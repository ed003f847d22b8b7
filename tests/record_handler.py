"""A ``serve --handler`` for the tests: appends "<pid> <event id>" to the file named by
$CHATBRIDGE_TEST_HANDLED, one line per call (appends of one line are atomic)."""

import os

import anyio.to_thread

from chatbridge import Channel, Event


async def record(event: Event, channel: Channel) -> None:
    await anyio.to_thread.run_sync(_append, f"{os.getpid()} {event.event_id}\n")


def _append(line: str) -> None:
    with open(os.environ["CHATBRIDGE_TEST_HANDLED"], "a") as handled:
        handled.write(line)
