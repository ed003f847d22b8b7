"""Inbound checks: samples parse to the common model, unknown events are typed and
kept, redeliveries are duplicates, every documented delivery state maps to its common
state, a send that fails after it was accepted is reported failed, a URL that cannot be
parsed, oversized or garbage bodies raise only payload errors, and signed requests whose
sealed content is broken are refused (a 4xx, never a crash)."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatbridge.channel import ChannelOptions
from chatbridge.clock import FakeClock
from chatbridge.errors import PayloadError, PayloadTooLargeError, WebhookError
from chatbridge.models import DeliveryState, StatusUpdate, UnknownEvent
from chatbridge.plugin.kit import ChannelKit
from chatbridge.store.memory import MemoryStore
from chatbridge.webhook import WebhookRequest
from chatbridge_conformance.harness import Harness

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


class InboundChecks:
    @pytest.mark.anyio
    async def test_samples_parse_to_the_common_model(self, harness: Harness) -> None:
        for sample in harness.kit.samples:
            result = await harness.channel.receive(harness.signed(sample.body))
            events = result.events + result.duplicates
            kinds = tuple(type(event) for event in events)
            assert kinds == sample.expected, f"sample {sample.name}: got {kinds}"
            for event in events:
                assert event.channel == harness.channel.name
                assert event.timestamp.tzinfo is not None
                assert event.raw, f"sample {sample.name}: a {type(event).__name__} without raw"
            if sample.check:
                sample.check(events)

    @pytest.mark.anyio
    async def test_unknown_event_is_typed_not_dropped(self, harness: Harness) -> None:
        result = await harness.channel.receive(harness.signed(harness.kit.unknown_body))
        assert result.events, "an unknown event must be reported, not dropped"
        assert all(isinstance(event, UnknownEvent) for event in result.events)
        assert all(event.raw for event in result.events)

    @pytest.mark.anyio
    async def test_redelivery_is_reported_as_duplicate(self, harness: Harness) -> None:
        for sample in harness.kit.samples:
            first = await harness.channel.receive(harness.signed(sample.body))
            again = await harness.channel.receive(harness.signed(sample.body))
            assert not again.events, f"sample {sample.name} was handled twice"
            seen = sorted(e.event_id for e in first.events + first.duplicates)
            assert sorted(e.event_id for e in again.duplicates) == seen, sample.name

    @pytest.mark.anyio
    async def test_signed_requests_with_broken_content_are_refused(self, harness: Harness) -> None:
        kit = harness.kit
        if not kit.broken:
            pytest.skip(f"{kit.name} lists no signed requests with broken content")
        wrong = []
        for what, request in kit.broken.items():
            try:
                await harness.channel.receive(request)
            except WebhookError as refused:
                harness.assert_no_secret(refused, what)
            except Exception as error:  # any other error is a 5xx
                wrong.append(f"{what}: {type(error).__name__}, a server error")
            else:
                wrong.append(f"{what}: accepted")
        assert not wrong, "signed requests with broken content:\n" + "\n".join(wrong)

    @pytest.mark.anyio
    async def test_a_request_url_that_cannot_be_parsed_is_refused(self, harness: Harness) -> None:
        """A signed sample whose URL a hostile ``Host`` header made unparsable raises a
        ``WebhookError`` (a 4xx), never another error (a 5xx)."""
        request = harness.signed(harness.kit.samples[0].body)
        scheme, _, _, *path = request.url.split("/", 3)
        for host in ("[::1", "support.example.com:port", "support.example.com:65536"):
            url = "/".join([scheme, "", host, *path])
            hostile = WebhookRequest(request.method, url, request.headers, request.body)
            with pytest.raises(WebhookError):
                await harness.channel.receive(hostile)

    @pytest.mark.anyio
    async def test_oversized_body_is_rejected(self, harness: Harness) -> None:
        body = b" " * (harness.channel.max_body_bytes + 1)
        with pytest.raises(PayloadTooLargeError):
            await harness.channel.receive(harness.signed(body))

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(body=st.binary(max_size=300) | _JSON.map(lambda value: repr(value).encode()))
    def test_garbage_raises_only_payload_errors(self, kit: ChannelKit, body: bytes) -> None:
        self._receive_garbage(kit, body)

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(document=_JSON)
    def test_wrong_json_raises_only_payload_errors(self, kit: ChannelKit, document: object) -> None:
        self._receive_garbage(kit, json.dumps(document).encode())

    @staticmethod
    def _receive_garbage(kit: ChannelKit, body: bytes) -> None:
        async def receive() -> None:
            async with httpx.AsyncClient() as client:
                options: ChannelOptions = {
                    "store": MemoryStore(),
                    "clock": FakeClock(),
                    "http_client": client,
                }
                channel = kit.build(options, kit.fake_api())
                try:
                    await channel.receive(kit.sign(kit.webhook(body), None))
                except PayloadError as error:
                    shown = f"{error} {error!r}"
                    assert not any(s in shown for s in kit.secrets), "an error shows a secret"

        anyio.run(receive)

    @pytest.mark.anyio
    async def test_every_delivery_state_maps_to_the_documented_state(
        self, harness: Harness
    ) -> None:
        kit = harness.kit
        if not kit.facts.statuses:
            pytest.skip(f"{kit.name} reports no delivery states")
        assert kit.status_body is not None, "the kit lists delivery states but no status_body"
        wrong = []
        for state, documented in kit.facts.statuses.items():
            result = await harness.channel.receive(harness.signed(kit.status_body(state)))
            events = result.events + result.duplicates
            mapped = [event.state for event in events if isinstance(event, StatusUpdate)]
            if not events or mapped != ([documented] if documented else []):
                wrong.append(f"{state!r} became {mapped or events}, documented: {documented}")
        assert not wrong, "\n".join(wrong)

    @pytest.mark.anyio
    async def test_a_send_that_fails_later_is_reported_failed(self, harness: Harness) -> None:
        """The provider accepts a send to an unreachable contact, then reports it failed
        (the kit's ``failed_later``): a failed StatusUpdate of that very message, with
        the provider's error. The fake notes the sends it will fail."""
        kit = harness.kit
        if kit.failed_later is None:
            pytest.skip(f"{kit.name} reports no failures after accepting a send")
        harness.in_process_only()
        assert harness.api is not None
        await harness.open_conversation()
        harness.api.fail_sends_to(kit.customer)
        messages = harness.messages()  # a template where there is one: what is reported on
        receipt = await harness.channel.send(messages.get("outside_window", messages["text"]))
        failed = harness.api.failed
        assert [message_id for message_id, _ in failed] == [receipt.message_id], failed
        report = kit.failed_later(*failed[0])
        events = (await harness.channel.receive(harness.signed(report))).events
        assert len(events) == 1 and isinstance(events[0], StatusUpdate), events
        assert events[0].state is DeliveryState.FAILED, events[0]
        assert events[0].message_id == receipt.message_id, events[0]
        assert events[0].errors, "the provider's error is lost"
