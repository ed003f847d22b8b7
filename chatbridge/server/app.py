"""The webhook server: one ASGI app with a route per channel.

For each request it checks method and size, lets the channel verify and parse it, then
writes the events' dedup marks and records to the outbox in one atomic step, and only
then answers the provider (providers give seconds, not minutes). The new events go at
once to the channel's history, if any, in the background. A worker takes each queued
event, records it in the history unless that was done already, applies it to the
channel's store (windows, followers, opt-outs: the one state path; ``Channel.apply``),
then calls the application's handler, retrying failures with back-off and keeping what
keeps failing, or cannot be read, as dead letters.

Mount it in FastAPI/Starlette (``app.mount("/webhooks", webhook_app)``); when the host
does not forward lifespan events to mounted apps, run the worker with
``async with webhook_app.running(): ...`` in the host's own lifespan.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.to_thread

from chatbridge import telemetry
from chatbridge.channel import Channel
from chatbridge.clock import Clock, SystemClock
from chatbridge.errors import WebhookError, describe
from chatbridge.models import Event
from chatbridge.recorder import Recorder
from chatbridge.server.outbox import Incoming, Mark, MemoryOutbox, Outbox, OutboxItem, records
from chatbridge.state import only_opens_window
from chatbridge.webhook import WebhookRequest, WebhookResponse, WebhookResult

if TYPE_CHECKING:
    from chatbridge.automation import Automation

Handler = Callable[[Event, Channel], Awaitable[None]]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

logger = logging.getLogger("chatbridge.server.app")


#: Bodies from this size up are encoded into records in a worker thread.
_ENCODE_IN_THREAD = 256 * 1024


class _Outage:
    """Logs a failing backend once per outage, and its count when it recovers."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.failures = 0
        self.since = 0.0

    def failed(self, exc: BaseException) -> None:
        if not self.failures:
            self.since = time.monotonic()
            logger.error("%s failed; retrying until it recovers", self.what, exc_info=exc)
        self.failures += 1

    def recovered(self) -> None:
        if self.failures:
            logger.warning(
                "%s recovered after %d failures in %.1f s",
                self.what,
                self.failures,
                time.monotonic() - self.since,
            )
            self.failures = 0


class WebhookApp:
    """An ASGI application serving ``/<name>`` for each channel in ``channels``.

    ``handler(event, channel)`` is called once per new event, after the provider has
    been answered. The worker takes up to ``batch`` due events at a time and runs up to
    ``concurrency`` handler calls at once, one contact's events one after the other, in
    order. Failed calls are retried ``max_attempts`` times in all, waiting ``backoff``
    times 2^attempt (capped at ``max_backoff``), then dead-lettered. When the worker stops
    (the server shuts down) it starts no new event and gives those being handled
    ``shutdown_grace`` to finish; one still running then is handed back to the outbox,
    due at once, for the next worker, as are the taken events it did not start (in
    their order, attempts unchanged). Each event is in its channel's history before its
    handler runs: recorded once acknowledged, in the background (one call per history for
    the events acknowledged meanwhile), or else by the worker before the handlers of its
    batch, in one call per history (each event alone, with its state, if that call fails
    or takes over ``record_timeout``). With
    ``automation``, each event goes through it before its handler (a failure there is
    the event's failure), and its timers run every ``poll_interval``. With ``metrics``,
    ``GET /metrics`` serves the Prometheus metrics of :mod:`chatbridge.telemetry` (unless
    a channel is served at ``/metrics``).
    """

    def __init__(
        self,
        channels: Mapping[str, Channel],
        handler: Handler,
        *,
        outbox: Outbox | None = None,
        max_attempts: int = 5,
        backoff: timedelta = timedelta(seconds=1),
        max_backoff: timedelta = timedelta(minutes=5),
        poll_interval: float = 0.5,
        batch: int = 64,
        concurrency: int = 16,
        shutdown_grace: timedelta = timedelta(seconds=30),
        record_timeout: timedelta = timedelta(seconds=2),
        automation: Automation | None = None,
        metrics: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self.channels = dict(channels)
        self.clock: Clock = clock or SystemClock()
        self.handler = handler
        self.outbox: Outbox = outbox or MemoryOutbox()
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.poll_interval = poll_interval
        self.batch = batch
        self.concurrency = concurrency
        self.shutdown_grace = shutdown_grace
        self.record_timeout = record_timeout
        self.automation = automation
        self.metrics = metrics
        self._stopping = False
        self._wake = anyio.Event()
        self._in_flight = 0  # webhooks being taken in now
        self._committing = 0  # of which waiting for the outbox's commit
        self._early = _EarlyRecorder(record_timeout.total_seconds(), self._busy)
        self._intake = _Outage("the outbox (accepting webhooks; answering 503)")
        self._worker = _Outage("the outbox worker")
        self._timers = _Outage("the automation's timers")

    # -- worker -----------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the outbox worker for the duration of the block."""
        stopped = anyio.Event()

        async def work() -> None:
            try:
                await self._work()
            finally:
                stopped.set()

        async with anyio.create_task_group() as group:
            group.start_soon(self._open_histories)
            group.start_soon(self._early.run)
            group.start_soon(work)
            if self.automation is not None:
                group.start_soon(self._run_timers, self.automation)
            try:
                yield
            finally:
                self._stopping = True
                self._wake.set()
                with anyio.move_on_after(self.shutdown_grace.total_seconds(), shield=True):
                    await stopped.wait()
                group.cancel_scope.cancel()
                self._stopping = False  # drain() works again

    async def _open_histories(self) -> None:
        """Connect the channels' histories before the first events need them (beside
        the intake: it does not wait); one that cannot connect is only logged (the
        worker's first call tries again)."""
        histories = {id(c.history): c.history for c in self.channels.values() if c.history}
        for history in histories.values():
            try:
                await history.open()
            except Exception as exc:
                logger.warning("the history could not connect at startup: %s", describe(exc))

    async def _run_timers(self, automation: Automation) -> None:
        """Run the automation's due work (fallback plans, waiting conversations) every
        ``poll_interval`` until the app stops."""
        while not self._stopping:
            try:
                await automation.tick()
            except Exception as exc:
                self._timers.failed(exc)
            else:
                self._timers.recovered()
            await anyio.sleep(self.poll_interval)

    async def drain(self) -> None:
        """Process every item that is due now (used by the worker; handy in tests)."""
        while not self._stopping:
            accepted = self._early.accepted
            if not (items := await self.outbox.due(self.clock.now(), self.batch)):
                self._early.caught_up(accepted)
                return
            await self._dispatch_batch(await self._isolate_retried(items))

    async def _isolate_retried(self, items: list[OutboxItem]) -> list[OutboxItem]:
        """``items`` up to the first one tried before, the rest given back. A take whose
        worker died comes back with every item counting an attempt, the innocent ones
        too: handled one by one after the first, an event that kills its worker costs
        no other event an attempt."""
        tried = next((n for n, item in enumerate(items) if item.attempts), len(items))
        if rest := items[tried + 1 :]:
            await self.outbox.release(*(item.id for item in rest))
        return items[: tried + 1]

    async def _work(self) -> None:
        while not self._stopping:
            try:
                await self.drain()
            except Exception as exc:  # the outbox itself failed: keep the worker alive
                self._worker.failed(exc)
            else:
                self._worker.recovered()
            with anyio.move_on_after(self.poll_interval):
                await self._wake.wait()
            self._wake = anyio.Event()

    async def _dispatch_batch(self, items: list[OutboxItem]) -> None:
        """Handle ``items``: one contact's events in order, up to ``concurrency`` contacts
        at a time, each acked as soon as it was handled. Items not started when the worker
        stops, or once half the lease has passed, are released untried."""
        deadline = time.monotonic() + self.outbox.lease.total_seconds() / 2
        limiter = anyio.CapacityLimiter(self.concurrency)
        started: set[str] = set()
        acks = _Acks(self.outbox)

        async def run(lane: list[tuple[OutboxItem, records.Record]]) -> None:
            async with limiter:
                applied = await self._apply(lane, recorded)
            for item, record in lane:
                async with limiter:
                    if self._stopping or time.monotonic() > deadline:
                        return
                    started.add(item.id)
                    try:
                        handled = await self._dispatch(item, record, applied, recorded)
                    except Exception:  # the outbox failed: the item comes back after its lease
                        logger.exception("outbox record %s could not be settled", item.id)
                        continue
                    if handled:
                        acks.add(item.id, group)

        try:
            async with anyio.create_task_group() as group:
                lanes: dict[object, list[tuple[OutboxItem, records.Record]]] = {}
                for item in items:
                    record = await self._read(item)
                    if record is None:
                        started.add(item.id)
                        continue
                    contact = record.event.contact
                    key = (record.route, contact.channel, contact.address) if contact else item.id
                    lanes.setdefault(key, []).append((item, record))
                recorded = await self._record(
                    [
                        record
                        for lane in lanes.values()
                        for item, record in lane
                        if item.attempts < self.max_attempts
                    ]
                )
                for lane in lanes.values():
                    group.start_soon(run, lane)
        finally:
            with anyio.CancelScope(shield=True):
                await acks.flush()
                if untried := [item.id for item in items if item.id not in started]:
                    await self.outbox.release(*untried)

    async def _read(self, item: OutboxItem) -> records.Record | None:
        """The item's record; None when it cannot be read (it is dead-lettered)."""
        if not isinstance(item.record, bytes):
            return item.record
        try:
            return records.decode(item.record)
        except records.RecordError as exc:
            logger.error("outbox record %s dead-lettered: %s", item.id, exc)
            await self.outbox.dead(item.id, f"RecordError: {exc}")
            telemetry.EVENTS_DEAD.labels("(unreadable)").inc()
            return None

    async def _record(self, batch: list[records.Record]) -> set[int]:
        """Record the events of ``batch`` in their channels' histories, one call per
        history (a few statements, however many contacts: :mod:`chatbridge.conversations`
        records them together); the ids of the histories that took them. If one fails,
        each event is recorded with its state (:meth:`Channel.apply`), and fails alone;
        so, too, if it takes over ``record_timeout`` (one customer locked elsewhere holds
        up only its own events)."""
        histories: dict[int, tuple[Recorder, list[Event]]] = {}
        for route, event, _ in batch:
            channel = self.channels.get(route)
            if channel is not None and channel.history is not None:
                histories.setdefault(id(channel.history), (channel.history, []))[1].append(event)
        recorded = set()
        for key, (history, events) in histories.items():
            events = await self._early.left(history, events)
            try:
                with anyio.fail_after(self.record_timeout.total_seconds()):
                    if events:
                        await history.record_events(events)
            except Exception as exc:
                logger.warning("recording %d events at once failed: %s", len(events), describe(exc))
            else:
                recorded.add(key)
        return recorded

    async def _apply(
        self, lane: list[tuple[OutboxItem, records.Record]], recorded: set[int]
    ) -> bool:
        """Apply the state of one contact's events at once (one read, one write) when
        they only open the window, so each handler still sees its event's state (at
        most a window opened a moment later); whether that was done (if not, each event
        is applied before its handler, and fails alone). ``recorded``: the histories
        that have the events already (:meth:`_record`)."""
        route = lane[0][1].route
        channel = self.channels.get(route)
        events = [record.event for _, record in lane]
        if channel is None or len(events) < 2 or not all(map(only_opens_window, events)):
            return False
        try:
            await channel.apply(events, record=id(channel.history) not in recorded)
        except Exception:
            return False
        return True

    async def _dispatch(
        self, item: OutboxItem, record: records.Record, applied: bool, recorded: set[int]
    ) -> bool:
        """Apply (unless ``applied``; recorded unless its history is in ``recorded``)
        and handle one event; whether it was handled (to be acked). A failure is
        retried later or dead-lettered here."""
        route, event, accepted_at = record
        log = {"channel": route, "event_id": event.event_id}
        if item.attempts >= self.max_attempts:  # its workers died while handling it
            logger.error("event %s dead-lettered: its worker stopped", event.event_id, extra=log)
            await self.outbox.dead(item.id, f"its worker stopped during {item.attempts} attempts")
            telemetry.EVENTS_DEAD.labels(route).inc()
            return False
        try:
            channel = self.channels.get(route)
            if channel is None:
                raise LookupError(f"no channel is served at {route!r} any more")
            with telemetry.span("chatbridge.handle", channel=route):
                if not applied:
                    await channel.apply([event], record=id(channel.history) not in recorded)
                if self.automation is not None:
                    await self.automation.on_event(event, channel)
                await self.handler(event, channel)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):  # stopped mid-way: due again at once
                await self.outbox.release(item.id)
            raise
        except Exception as exc:
            error = describe(exc)
            if item.attempts + 1 >= self.max_attempts:
                logger.error(
                    "event %s dead-lettered after %d attempts: %s",
                    event.event_id,
                    item.attempts + 1,
                    error,
                    extra=log,
                )
                await self.outbox.dead(item.id, error)
                telemetry.EVENTS_DEAD.labels(route).inc()
            else:
                wait = min(self.backoff * 2 ** min(item.attempts, 32), self.max_backoff)
                logger.warning(
                    "handler failed for %s, retry in %s: %s",
                    event.event_id,
                    wait,
                    error,
                    extra=log,
                )
                await self.outbox.retry(item.id, self.clock.now() + wait, error)
                telemetry.EVENTS_RETRIED.labels(route).inc()
            return False
        telemetry.EVENTS_HANDLED.labels(route).inc()
        if accepted_at is not None:
            waited = (self.clock.now() - accepted_at).total_seconds()
            telemetry.HANDLING_SECONDS.labels(route).observe(max(waited, 0.0))
        return True

    # -- ASGI -------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            response = await self._handle(scope, receive)
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status,
                    "headers": [(b"content-type", response.media_type.encode())],
                }
            )
            await send({"type": "http.response.body", "body": response.body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        async with self.running():
            await send({"type": "lifespan.startup.complete"})
            while (await receive())["type"] != "lifespan.shutdown":
                pass
        await send({"type": "lifespan.shutdown.complete"})

    async def _handle(self, scope: Scope, receive: Receive) -> WebhookResponse:
        name = scope["path"].strip("/").rpartition("/")[2]
        channel = self.channels.get(name)
        if channel is None and self.metrics and name == "metrics" and scope["method"] == "GET":
            return await self._metrics()
        if channel is None:
            return _text(404, f"no channel is served at {scope['path']}")
        started = time.perf_counter()
        self._in_flight += 1
        try:
            with telemetry.span("chatbridge.receive", channel=name):
                response = await self._ingest(name, channel, scope, receive)
        finally:
            self._in_flight -= 1
        if response.status >= 400:
            telemetry.WEBHOOKS_REFUSED.labels(name, str(response.status)).inc()
        telemetry.ACK_SECONDS.labels(name).observe(time.perf_counter() - started)
        return response

    async def _metrics(self) -> WebhookResponse:
        """``GET /metrics``: the Prometheus metrics, the outbox's gauges refreshed."""
        waiting, earliest = await self.outbox.pending()
        telemetry.OUTBOX_DEPTH.set(waiting)
        lag = (self.clock.now() - earliest).total_seconds() if earliest is not None else 0.0
        telemetry.OUTBOX_LAG.set(max(lag, 0.0))
        body, media_type = telemetry.exposition()
        return WebhookResponse(body=body, media_type=media_type)

    async def _ingest(
        self, name: str, channel: Channel, scope: Scope, receive: Receive
    ) -> WebhookResponse:
        """Read, verify and parse one webhook, commit its new events, then answer."""
        if scope["method"] not in ("GET", "POST"):
            return _text(405, f"{scope['method']} is not allowed: providers use GET and POST")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length", "0")
        if not (declared.isascii() and declared.isdigit() and len(declared) <= 18) or (
            int(declared) > channel.max_body_bytes
        ):
            return _text(413, f"body over the {channel.max_body_bytes}-byte limit")
        body = await _read_body(receive, channel.max_body_bytes)
        if body is None:
            return _text(413, f"body over the {channel.max_body_bytes}-byte limit")
        request = WebhookRequest(scope["method"], _url(scope, headers), headers, body)
        try:
            parsed = await channel.parse_request(request)
        except WebhookError as exc:
            return _text(exc.status, str(exc))
        try:
            fresh = await self._accept(name, channel, parsed, len(body))
        except WebhookError as exc:  # a replayed one-time value
            return _text(exc.status, str(exc))
        except Exception as exc:  # the outbox could not commit: not acknowledged
            self._intake.failed(exc)
            return _text(503, "the event could not be stored; please retry")
        self._intake.recovered()
        telemetry.EVENTS_RECEIVED.labels(name).inc(len(fresh))
        telemetry.EVENTS_ACKNOWLEDGED.labels(name).inc(sum(fresh))
        if any(fresh):
            self._wake.set()
        new = [event for event, is_new in zip(parsed.events, fresh, strict=True) if is_new]
        if channel.history is not None and new:
            self._early.add(channel.history, new)
        try:
            return await channel.answer(replace(parsed, events=new))
        except Exception:  # the events are stored: acknowledge them all the same
            logger.exception("%s could not answer a stored webhook; acknowledged", name)
            return parsed.response

    async def _accept(
        self, route: str, channel: Channel, parsed: WebhookResult, size: int
    ) -> list[bool]:
        """Mark and queue the new events of ``parsed`` in one atomic outbox step."""
        now = self.clock.now()
        expires_at = now + channel.dedup_ttl

        batch = [
            Incoming(Mark(channel.dedup_key(event), expires_at), records.Record(route, event, now))
            for event in parsed.events
        ]
        if size >= _ENCODE_IN_THREAD and not isinstance(self.outbox, MemoryOutbox):
            await anyio.to_thread.run_sync(lambda: [item.payload for item in batch])
        once = [Mark(key, now + ttl) for key, ttl in parsed.once.items()]
        self._committing += 1
        try:
            return await self.outbox.accept(batch, now, once)
        finally:
            self._committing -= 1

    def _busy(self) -> bool:
        """Whether the intake needs the CPU before early recording: more than
        :attr:`_EarlyRecorder.BUSY` webhooks are being read, verified, parsed or answered
        (those waiting for the outbox's commit, as its disk sync, take none), or more than
        :attr:`_EarlyRecorder.BACKLOG` in all (the outbox falls behind: a load above
        capacity)."""
        early = _EarlyRecorder
        return self._in_flight - self._committing > early.BUSY or self._in_flight > early.BACKLOG


_Key = tuple[int, str, str]


def _key(history: Recorder, event: Event) -> _Key:
    return id(history), event.channel, event.event_id


class _EarlyRecorder:
    """Records the events the intake acknowledged in their channels' histories at once,
    in the background, so that they show in their customers' timelines without waiting
    for the worker (its outbox take, its batch before); the worker then records (before
    the handlers, as always) only the events this did not (:meth:`left`).

    One call per history at a time, the events in the order they were accepted: those
    accepted during a call go together in the next one. The outbox stays the record of
    what was acknowledged: this is only a head start, its state is lost with the process
    and the worker records what it did not. To keep one contact's events in order, it
    starts paused (the outbox may hold older events) and pauses when it gives up events
    (a failed call, one over the record timeout, more than :attr:`LIMIT` waiting): it
    resumes once the worker found the outbox empty after those were accepted
    (:meth:`caught_up`), so that they were recorded first.

    Acknowledging comes first: while ``busy()`` (more than :attr:`BUSY` webhooks being
    taken in, but for those waiting for the outbox's commit; more than :attr:`BACKLOG`
    in all), it waits, and past :attr:`LIMIT` events waiting it leaves them to the
    worker; so under a load above capacity it takes no CPU from the acknowledgements."""

    #: Events waiting at most: more pause it (the worker records them).
    LIMIT = 1024
    #: Webhooks being taken in at once (but for the outbox's commit) above which the
    #: intake is busy.
    BUSY = 4
    #: Webhooks being taken in at once, those waiting for the commit too, above which
    #: the intake is busy.
    BACKLOG = 32
    #: How long it waits before looking again whether the intake is still busy.
    YIELD_SECONDS = 0.002

    def __init__(self, timeout: float, busy: Callable[[], bool] = lambda: False) -> None:
        self.timeout = timeout
        self._busy = busy
        self.running = False
        self.paused = True
        #: Calls of :meth:`add` so far, and the count at the last one it gave up.
        self.accepted = 0
        self.skipped = 0
        self._queue: list[tuple[Recorder, Event]] = []
        self._pending: set[_Key] = set()  # queued or being recorded
        self._recorded: set[_Key] = set()  # recorded, until the worker takes them
        self._wake = anyio.Event()
        self._progress = anyio.Event()  # set (and replaced) after each round of calls

    def add(self, history: Recorder, events: list[Event]) -> None:
        """Record ``events`` (just acknowledged) in ``history`` soon."""
        self.accepted += 1
        if not self.running or self.paused or len(self._queue) + len(events) > self.LIMIT:
            self._give_up()
            return
        for event in events:
            self._queue.append((history, event))
            self._pending.add(_key(history, event))
        self._wake.set()

    def caught_up(self, accepted: int) -> None:
        """The worker found the outbox empty, asking after ``accepted`` calls of
        :meth:`add`: each event accepted until then was recorded."""
        if accepted >= self.skipped:
            self.paused = False

    def _give_up(self) -> None:
        """Leave what waits, and what comes until the worker caught up, to the worker."""
        self.paused = True
        self.skipped = self.accepted
        self._pending.difference_update(_key(history, event) for history, event in self._queue)
        self._queue = []

    async def left(self, history: Recorder, events: list[Event]) -> list[Event]:
        """Of ``events`` (taken by the worker), those this did not record in
        ``history``, once it is done with them (up to the record timeout); forgets them."""
        keys = [_key(history, event) for event in events]
        with anyio.move_on_after(self.timeout):
            while not self._pending.isdisjoint(keys):
                await self._progress.wait()
        left = [event for event, key in zip(events, keys, strict=True) if key not in self._recorded]
        self._recorded.difference_update(keys)
        return left

    async def run(self) -> None:
        """Record what is added, until cancelled."""
        self.running = True
        try:
            while True:
                await self._wake.wait()
                # Until the intake caught its breath (a counter it keeps: polled).
                while self._busy() and self._queue:  # noqa: ASYNC110
                    await anyio.sleep(self.YIELD_SECONDS)
                self._wake = anyio.Event()
                taken, self._queue = self._queue, []
                histories: dict[int, tuple[Recorder, list[Event]]] = {}
                for history, event in taken:
                    histories.setdefault(id(history), (history, []))[1].append(event)
                for history, events in histories.values():
                    keys = [_key(history, event) for event in events]
                    try:
                        with anyio.fail_after(self.timeout):
                            await history.record_events(events)
                    except Exception as exc:  # the worker records them
                        failed = describe(exc)
                        logger.info("recording %d events early failed: %s", len(events), failed)
                        self._give_up()
                    else:
                        self._recorded.update(keys)
                    self._pending.difference_update(keys)
                if len(self._recorded) > _REMEMBERED:  # taken by another process's worker
                    self._recorded.clear()
                self._progress.set()
                self._progress = anyio.Event()
        finally:  # what was under way is the worker's now; nobody waits on it
            self.running = False
            self._give_up()
            self._pending.clear()
            self._progress.set()
            self._progress = anyio.Event()


#: Keys of early recorded events kept at most for the worker (which forgets those it
#: takes; another process's worker may take the others).
_REMEMBERED = 100_000


class _Acks:
    """Acks handled items at once without making the handler wait: those handled while
    an ack is being written go together in the next one."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.waiting: list[str] = []
        self.writing = False

    def add(self, item_id: str, group: anyio.abc.TaskGroup) -> None:
        self.waiting.append(item_id)
        if not self.writing:
            self.writing = True
            group.start_soon(self._write)

    async def _write(self) -> None:
        try:
            with anyio.CancelScope(shield=True):
                await self.flush()
        finally:
            self.writing = False

    async def flush(self) -> None:
        """Ack what waits (a failed ack leaves its items to come back after the lease)."""
        while self.waiting:
            ids, self.waiting = self.waiting, []
            try:
                await self.outbox.ack(*ids)
            except Exception:
                logger.exception("could not ack %d handled records", len(ids))


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _url(scope: Scope, headers: Mapping[str, str]) -> str:
    host = headers.get("host") or "{}:{}".format(*scope.get("server") or ("localhost", 80))
    url = f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}{scope['path']}"
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{url}?{query}" if query else url


def _text(status: int, message: str) -> WebhookResponse:
    return WebhookResponse(status=status, body=message.encode())
