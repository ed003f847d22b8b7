"""A webhook server that kills itself (SIGKILL) once at a chosen step, for the
fault-injection tests: ``python -m tests.crash_server PORT OUTBOX CRASH_AT WORKDIR``.

OUTBOX is ``sqlite`` (a file in WORKDIR) or a ``redis://`` URL with a key prefix after
``#``. CRASH_AT is one of :data:`STEPS` (or ``none``); the crash happens the first time
the step is reached, marked by a file in WORKDIR so the restarted server runs through.
The handler appends each event id to WORKDIR/handled, synced to disk.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import uvicorn

from chatbridge.channel import Channel
from chatbridge.models import Event
from chatbridge.server.app import WebhookApp
from chatbridge.server.outbox import Incoming, Mark, Outbox, SQLiteOutbox
from chatbridge.server.outbox.redis import RedisOutbox
from chatbridge.store.sqlite import SQLiteStore
from chatbridge.whatsapp import kit

#: receive -> queue -> handle: after parsing (nothing committed), after the commit
#: (before the answer), inside the handler, after the handler (before the ack).
STEPS = ("before-commit", "after-commit", "in-handler", "before-ack")


def main(port: int, where: str, crash_at: str, workdir: Path) -> None:
    def crash(step: str) -> None:
        marker = workdir / f"crashed-{step}"
        if step == crash_at and not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)

    inner: Outbox
    if where == "sqlite":
        inner = SQLiteOutbox(workdir / "outbox.db", lease=timedelta(seconds=1))
    else:
        url, _, prefix = where.partition("#")
        inner = RedisOutbox.from_url(url, prefix=prefix, lease=timedelta(seconds=1))

    class CrashingOutbox:
        def __getattr__(self, name: str) -> object:
            return getattr(inner, name)

        async def accept(
            self, incoming: Sequence[Incoming], now: datetime, once: Sequence[Mark] = ()
        ) -> list[bool]:
            crash("before-commit")
            fresh = await inner.accept(incoming, now, once)
            crash("after-commit")
            return fresh

        async def ack(self, *item_ids: str) -> None:
            crash("before-ack")
            await inner.ack(*item_ids)

    async def handle(event: Event, channel: Channel) -> None:
        crash("in-handler")
        with open(workdir / "handled", "a") as log:  # noqa: ASYNC230 (a synced write is the point)
            log.write(event.event_id + "\n")
            log.flush()
            os.fsync(log.fileno())

    channel = kit.kit.build({"store": SQLiteStore(workdir / "state.db")})
    app = WebhookApp({"whatsapp": channel}, handle, outbox=CrashingOutbox(), poll_interval=0.05)  # type: ignore[arg-type]
    uvicorn.run(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4]))
