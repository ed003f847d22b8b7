"""Prometheus metrics: the webhook app counts what it receives, acknowledges, refuses,
handles, retries and dead-letters by channel, times acknowledgements and handling,
reports the outbox's depth and lag at ``GET /metrics``, and channels count their sends
by outcome, policy refusals by reason and quota units; no label holds an address, an id
or a secret."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from chatbridge import Channel, Event, FakeClock, Message
from chatbridge.errors import PolicyRefusedError
from chatbridge.line import kit as line_kit
from chatbridge.server.app import WebhookApp
from chatbridge.server.outbox import MemoryOutbox
from chatbridge.whatsapp import kit as whatsapp_kit
from tests.test_ingest import post

pytestmark = pytest.mark.anyio


class Counts:
    """The change of metric samples since it was made (the registry is process-wide)."""

    def __init__(self) -> None:
        self._before: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def __call__(self, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return (REGISTRY.get_sample_value(name, labels) or 0.0) - self._before.get(key, 0.0)

    def start(self, *samples: tuple[str, dict[str, str]]) -> None:
        for name, labels in samples:
            self._before[(name, tuple(sorted(labels.items())))] = (
                REGISTRY.get_sample_value(name, labels) or 0.0
            )


@pytest.fixture
def counts() -> Counts:
    return Counts()


async def test_the_webhook_app_counts_and_times_what_it_receives_and_handles(
    counts: Counts,
) -> None:
    fails = {"wamid.fails": 0}

    async def handle(event: Event, channel: Channel) -> None:
        if event.event_id in fails:
            fails[event.event_id] += 1
            raise RuntimeError("the handler failed")

    wa = {"channel": "whatsapp"}
    names = [
        "chatbridge_events_received_total",
        "chatbridge_events_acknowledged_total",
        "chatbridge_events_handled_total",
        "chatbridge_events_retried_total",
        "chatbridge_events_dead_lettered_total",
        "chatbridge_ack_seconds_count",
        "chatbridge_handling_seconds_count",
    ]
    refused = ("chatbridge_webhooks_refused_total", {**wa, "status": "401"})
    counts.start(*[(name, wa) for name in names], refused)
    channel = whatsapp_kit.kit.build()
    app = WebhookApp({"whatsapp": channel}, handle, outbox=MemoryOutbox(), max_attempts=2)
    app.backoff = app.max_backoff = app.backoff * 0  # retry at once
    good = whatsapp_kit.inbound("text", {"body": "hi"}, id="wamid.ok")
    bad = whatsapp_kit.inbound("text", {"body": "hi"}, id="wamid.fails")
    for body in (good, good, bad):  # the second is a redelivery
        assert (await post(app, whatsapp_kit.sign(whatsapp_kit.webhook(body)))).status_code == 200
    forged = whatsapp_kit.sign(whatsapp_kit.webhook(good)).with_headers(
        **{"X-Hub-Signature-256": "sha256=" + "0" * 64}
    )
    assert (await post(app, forged)).status_code == 401
    await app.drain()
    await app.drain()
    assert [counts(name, **wa) for name in names] == [3, 2, 1, 1, 1, 4, 1]
    assert counts(refused[0], **refused[1]) == 1


async def test_get_metrics_shows_the_outbox_and_no_address_or_secret() -> None:
    clock = FakeClock()
    channel = whatsapp_kit.kit.build({"clock": clock})
    app = WebhookApp({"whatsapp": channel}, _ignore, metrics=True, clock=clock)
    body = whatsapp_kit.inbound("text", {"body": "hi"}, id="wamid.waits")
    await post(app, whatsapp_kit.sign(whatsapp_kit.webhook(body)))
    clock.advance(timedelta(seconds=7))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        response = await http.get("http://chatbridge.test/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "chatbridge_outbox_depth 1.0" in text
    assert "chatbridge_outbox_lag_seconds 7.0" in text
    assert 'chatbridge_events_acknowledged_total{channel="whatsapp"}' in text
    for private in [whatsapp_kit.CUSTOMER, "wamid.waits", *whatsapp_kit.kit.secrets]:
        assert private not in text
    without = WebhookApp({"whatsapp": channel}, _ignore)  # metrics are opt-in
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=without)) as http:
        assert (await http.get("http://chatbridge.test/metrics")).status_code == 404


async def test_channels_count_sends_by_outcome_refusals_by_reason_and_quota_units(
    counts: Counts,
) -> None:
    line = {"channel": "line"}
    sent = ("chatbridge_sends_total", {**line, "outcome": "sent"})
    refused = ("chatbridge_sends_total", {**line, "outcome": "refused"})
    reason = ("chatbridge_policy_refusals_total", {**line, "reason": "not_a_follower"})
    units = ("chatbridge_quota_units_total", line)
    counts.start(sent, refused, reason, units)
    api = line_kit.fake_api()
    async with httpx.AsyncClient(transport=httpx.MockTransport(api)) as http:
        channel = line_kit.kit.build({"http_client": http, "clock": FakeClock()})
        friend, stranger = channel.identity(line_kit.CUSTOMER), channel.identity("U" + "0" * 32)
        await channel.store.update_contact_state(friend, follower=True)
        await channel.send(Message(contact=friend, text="a push"))
        with pytest.raises(PolicyRefusedError):
            await channel.send(Message(contact=stranger, text="to a stranger"))
    assert [counts(name, **labels) for name, labels in (sent, refused, reason, units)] == [
        1,
        1,
        1,
        1,
    ]


async def _ignore(event: Event, channel: Channel) -> None:
    return None


def test_spans_start_once_a_tracer_provider_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry import trace

    from chatbridge import telemetry

    started: list[tuple[str, object]] = []

    class Tracer(trace.NoOpTracer):
        def start_as_current_span(self, name: str, *args: Any, **kwargs: Any) -> Any:
            started.append((name, kwargs.get("attributes")))
            return super().start_as_current_span(name, *args, **kwargs)

    class Provider(trace.NoOpTracerProvider):
        def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
            return Tracer()

    with telemetry.span("chatbridge.send", channel="whatsapp"):
        pass  # no SDK configured: nothing to start
    monkeypatch.setattr(trace, "get_tracer_provider", Provider)
    telemetry._tracer.cache_clear()
    try:
        with telemetry.span("chatbridge.send", channel="whatsapp"):
            pass
    finally:
        telemetry._tracer.cache_clear()
    assert started == [("chatbridge.send", {"channel": "whatsapp"})]
