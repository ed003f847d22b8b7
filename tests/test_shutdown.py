"""Stopping the webhook app's worker (the server shuts down): no new event is taken, the
one being handled gets its grace period, and one still running after it is handed back
to the outbox, due at once, so another worker handles it. Nothing acknowledged is lost."""

from datetime import timedelta

import anyio
import pytest

from chatbridge import Channel, Event
from chatbridge.server.app import WebhookApp
from chatbridge.whatsapp import kit as whatsapp_kit
from tests.test_ingest import post

pytestmark = pytest.mark.anyio


class Gate:
    """A handler that waits for ``release`` (or forever) before it finishes."""

    def __init__(self) -> None:
        self.started, self.release = anyio.Event(), anyio.Event()
        self.finished: list[str] = []

    async def __call__(self, event: Event, channel: Channel) -> None:
        self.started.set()
        await self.release.wait()
        self.finished.append(event.event_id)


async def _stopped_while_handling(
    grace: timedelta, release_after: float | None
) -> tuple[WebhookApp, Gate]:
    """Two events queued; the worker stops while the first is being handled (its
    handler released ``release_after`` seconds later, or never)."""
    gate = Gate()
    channel = whatsapp_kit.kit.build()
    app = WebhookApp({"whatsapp": channel}, gate, shutdown_grace=grace, poll_interval=0.01)
    for text in ("first", "second"):
        body = whatsapp_kit.inbound("text", {"body": text}, id=f"wamid.{text}")
        assert (await post(app, whatsapp_kit.sign(whatsapp_kit.webhook(body)))).status_code == 200
    async with anyio.create_task_group() as group, app.running():
        await gate.started.wait()
        if release_after is not None:
            group.start_soon(_release, gate, release_after)
    return app, gate


async def _release(gate: Gate, after: float) -> None:
    await anyio.sleep(after)
    gate.release.set()


async def test_the_event_being_handled_finishes_within_the_grace_and_no_new_one_is_taken() -> None:
    app, gate = await _stopped_while_handling(timedelta(seconds=5), release_after=0.05)
    assert gate.finished == ["wamid.first"]
    [left] = await app.outbox.due(app.clock.now(), 10)  # the second waits, untouched
    assert left.attempts == 0


async def test_an_event_still_running_after_the_grace_is_handed_back_due_at_once() -> None:
    app, gate = await _stopped_while_handling(timedelta(milliseconds=50), release_after=None)
    assert gate.finished == []
    gate.release.set()
    await app.drain()  # the interrupted one is due again now, not after its lease
    assert gate.finished == ["wamid.first", "wamid.second"]
