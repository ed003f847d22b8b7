"""The conformance checks every channel must pass.

Subclass :class:`ConformanceSuite` in a test module; the pytest plugin parametrizes its
``kit`` fixture over every installed kit (or override ``kit`` to pin one).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta

import anyio
import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatbridge.channel import Channel, ChannelOptions
from chatbridge.clock import FakeClock
from chatbridge.errors import (
    PayloadError,
    PayloadTooLargeError,
    PolicyRefusedError,
    SignatureError,
)
from chatbridge.models import Message, UnknownEvent
from chatbridge.plugin.kit import ChannelKit
from chatbridge.policy import RefusalReason
from chatbridge.store.memory import MemoryStore
from chatbridge.testing.sandbox import sandbox_channel
from chatbridge.webhook import WebhookRequest

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


class _Counting(httpx.AsyncBaseTransport):
    """A real HTTP transport that counts what it sends (sandbox runs)."""

    def __init__(self) -> None:
        self.count = 0
        self._transport = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


@dataclass
class Harness:
    """A channel under test, its clock, and how to count what reached the provider:
    the in-process fake (through respx), or a running sandbox over HTTP."""

    kit: ChannelKit
    channel: Channel
    clock: FakeClock
    sent: Callable[[], int]
    sandbox: str | None = None

    def signed(self, body: bytes) -> WebhookRequest:
        return self.kit.sign(self.kit.webhook(body), None)

    @property
    def calls(self) -> int:
        """Everything that reached the provider: HTTP requests (mocked or not) and
        deliveries to non-HTTP fakes."""
        return self.sent()

    async def open_conversation(self) -> None:
        for body in self.kit.open_conversation(self.kit.customer, self.clock.now()):
            await self.channel.receive(self.signed(body))
        if self.sandbox:  # the provider learns that the customer wrote, too
            url = f"{self.sandbox}/{self.kit.name}/_sandbox/customer-wrote"
            async with httpx.AsyncClient() as control:
                await control.post(url, json={"address": self.kit.customer})

    def text(self) -> Message:
        return Message(contact=self.channel.identity(self.kit.customer), text="conformance")


class ConformanceSuite:
    """Checks the channel contract: signatures, parsing, robustness, policy, media.

    Set ``kits = [...]`` on a subclass to pin the kits it runs on.
    """

    chatbridge_conformance = True
    kits: list[ChannelKit] | None = None

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    async def harness(
        self, kit: ChannelKit, request: pytest.FixtureRequest
    ) -> AsyncIterator[Harness]:
        sandbox: str | None = request.config.getoption("chatbridge_sandbox", None)
        if sandbox and kit.api_bases:
            async for harness in self._sandboxed(kit, sandbox.rstrip("/")):
                yield harness
            return
        api = kit.fake_api()
        clock = FakeClock()
        with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
            for host in api.hosts:
                router.route(host=host).mock(side_effect=api)
            async with httpx.AsyncClient() as client:
                options: ChannelOptions = {
                    "store": MemoryStore(),
                    "clock": clock,
                    "http_client": client,
                }
                channel = kit.build(options, api)
                yield Harness(kit, channel, clock, lambda: max(len(router.calls), api.received))
                await channel.aclose()

    @staticmethod
    async def _sandboxed(kit: ChannelKit, sandbox: str) -> AsyncIterator[Harness]:
        """The kit's channel pointed at a running sandbox, over real HTTP."""
        config = sandbox_channel(sandbox, kit)
        clock, transport = FakeClock(), _Counting()
        async with httpx.AsyncClient(transport=transport) as client:
            channel = kit.channel.from_config(
                config, store=MemoryStore(), clock=clock, http_client=client
            )
            yield Harness(kit, channel, clock, lambda: transport.count, sandbox)

    # -- signatures -------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_every_signed_sample_is_accepted(self, harness: Harness) -> None:
        for sample in harness.kit.samples:
            await harness.channel.receive(harness.signed(sample.body))

    @pytest.mark.anyio
    async def test_missing_signature_is_rejected(self, harness: Harness) -> None:
        request = harness.kit.webhook(harness.kit.samples[0].body)
        with pytest.raises(SignatureError):
            await harness.channel.receive(request)

    @pytest.mark.anyio
    async def test_forged_signature_is_rejected(self, harness: Harness) -> None:
        request = harness.kit.webhook(harness.kit.samples[0].body)
        with pytest.raises(SignatureError):
            await harness.channel.receive(harness.kit.sign(request, "not-the-secret"))

    @pytest.mark.anyio
    async def test_altered_body_is_rejected(self, harness: Harness) -> None:
        if not harness.kit.signs_body:
            pytest.skip(f"{harness.kit.name} signatures do not cover the body")
        first, second = harness.kit.samples[0].body, harness.kit.samples[1].body
        signed = harness.signed(first)
        altered = WebhookRequest(signed.method, signed.url, signed.headers, second)
        with pytest.raises(SignatureError):
            await harness.channel.receive(altered)

    # -- parsing ----------------------------------------------------------------------

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
        body = harness.kit.samples[0].body
        first = await harness.channel.receive(harness.signed(body))
        again = await harness.channel.receive(harness.signed(body))
        assert first.events and not again.events
        assert [e.event_id for e in again.duplicates] == [e.event_id for e in first.events]

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
                with contextlib.suppress(PayloadError):
                    await channel.receive(kit.sign(kit.webhook(body), None))

        anyio.run(receive)

    # -- policy -----------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_send_inside_the_window_is_delivered(self, harness: Harness) -> None:
        await harness.open_conversation()
        receipt = await harness.channel.send(harness.text())
        assert receipt.contact == harness.text().contact
        assert harness.calls >= 1

    @pytest.mark.anyio
    async def test_send_outside_the_window_follows_the_declared_rules(
        self, harness: Harness
    ) -> None:
        await harness.open_conversation()
        window = harness.channel.rules.window
        harness.clock.advance((window or timedelta(days=30)) + timedelta(minutes=1))
        before = harness.calls
        if window is None:
            await harness.channel.send(harness.text())
            return
        with pytest.raises(PolicyRefusedError) as refused:
            await harness.channel.send(harness.text())
        assert refused.value.decision.reason is RefusalReason.WINDOW_CLOSED
        assert refused.value.decision.remedies
        assert harness.calls == before, "a refused send must not reach the network"
        if harness.kit.outside_window is not None:
            identity = harness.channel.identity(harness.kit.customer)
            await harness.channel.send(harness.kit.outside_window(identity))
            assert harness.calls > before

    @pytest.mark.anyio
    async def test_refusal_for_a_stranger_makes_no_http_call(self, harness: Harness) -> None:
        rules = harness.channel.rules
        if rules.window is None and not rules.requires_follower:
            pytest.skip(f"{harness.kit.name} may message anyone")
        with pytest.raises(PolicyRefusedError):
            await harness.channel.send(harness.text())
        assert harness.calls == 0

    # -- media ------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_media_round_trips(self, harness: Harness) -> None:
        media = harness.kit.media
        if media is None:
            pytest.skip(f"{harness.kit.name} has no media upload API")
        uploaded = await harness.channel.upload_media(media)
        assert uploaded.provider_id
        assert await harness.channel.download_media(uploaded) == media.data

    # -- hygiene ----------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_secrets_stay_out_of_reprs_and_errors(self, harness: Harness) -> None:
        shown = [repr(harness.channel), str(vars(harness.channel).get("config", ""))]
        try:
            await harness.channel.receive(harness.kit.sign(harness.kit.webhook(b"{}"), "forged"))
        except Exception as exc:
            shown.append(str(exc))
        for secret in harness.kit.secrets:
            assert all(secret not in text for text in shown)
