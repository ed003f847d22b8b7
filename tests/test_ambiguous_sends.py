"""Ambiguous sends: when the provider may have accepted a message (the request went out,
no readable answer came back) the quota stays counted and a retry with the error's
idempotency key cannot deliver twice nor count twice."""

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio
import httpx
import pytest
import respx

from chatbridge import FakeClock, Message, MessageInvalidError, UnsupportedMessageError
from chatbridge.errors import DeliveryUnknownError, ProviderUnavailableError
from chatbridge.http import Engine, RetryPolicy
from chatbridge.line import LineChannel, kit
from chatbridge.line import outbound as line_outbound
from chatbridge.line.fake import FakeLineAPI
from chatbridge.models import Identity, Receipt
from chatbridge.policy import quota_key
from chatbridge.whatsapp import WhatsAppChannel
from chatbridge.whatsapp import kit as whatsapp_kit
from chatbridge.whatsapp.fake import FakeWhatsAppAPI
from tests.test_http import Dropper, loopback

pytestmark = pytest.mark.anyio
Responder = Callable[[httpx.Request], httpx.Response]


def lost_answer(api: Responder) -> Responder:
    """The provider accepts the request, then the answer is lost (read timeout)."""

    def respond(request: httpx.Request) -> httpx.Response:
        api(request)
        raise httpx.ReadTimeout("timed out", request=request)

    return respond


def lost_request(request: httpx.Request) -> httpx.Response:
    """The request went out and nothing came back (the provider never saw it)."""
    raise httpx.RemoteProtocolError("Server disconnected", request=request)


def refused(request: httpx.Request) -> httpx.Response:
    """The connection could not be made: nothing was sent."""
    raise httpx.ConnectError("Connection refused", request=request)


@dataclass
class Line:
    channel: LineChannel
    api: FakeLineAPI
    route: respx.Route

    def fail(self, *answers: Responder) -> None:
        """Answer the next requests with ``answers``, then with the fake again."""
        self.route.side_effect = [*answers, *[self.api] * 10]

    def keys(self) -> list[str | None]:
        sent = [r for r in self.api.requests if r.method == "POST"]
        return [r.headers.get("x-line-retry-key") for r in sent]

    async def used(self) -> int:
        return (await self.channel.quota_status()).local_used

    async def befriend(self, *users: str) -> list[Identity]:
        identities = [self.channel.identity(user) for user in users]
        for identity in identities:  # followers without a reply token: sends are pushes
            await self.channel.store.update_contact_state(identity, follower=True)
        return identities


@pytest.fixture
async def line() -> AsyncIterator[Line]:
    config = kit.CONFIG.model_copy(update={"monthly_quota": 1})
    channel = LineChannel(config, clock=FakeClock(), retry=RetryPolicy(backoff=0))
    api = FakeLineAPI(config, quota=1000)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        route = router.route(host="api.line.me").mock(side_effect=api)
        setup = Line(channel, api, route)
        await setup.befriend(kit.CUSTOMER)
        yield setup
        await channel.aclose()


def push(text: str = "hello") -> Message:
    return Message.model_validate(
        {"contact": {"channel": "line", "address": kit.CUSTOMER}, "text": text}
    )


async def test_read_timeout_after_send_keeps_the_quota_and_the_retry_reuses_the_key(
    line: Line,
) -> None:
    line.fail(lost_answer(line.api))
    with pytest.raises(DeliveryUnknownError) as raised:
        await line.channel.send(push())
    error = raised.value
    assert error.channel == "line" and isinstance(error.__cause__, httpx.ReadTimeout)
    assert error.idempotency_key is not None and uuid.UUID(error.idempotency_key)
    assert "retry safely" in str(error)
    assert await line.used() == 1  # the quota (1) is spent: the message may be out
    receipt = await line.channel.send(push(), idempotency_key=error.idempotency_key)
    assert receipt.raw == {"acceptedRequestId": "req-1"}  # LINE's 409: accepted before
    assert line.keys() == [error.idempotency_key] * 2
    assert len(line.api.pushes) == 1 and await line.used() == 1


async def test_retry_after_a_request_lost_on_the_way_is_delivered_once(line: Line) -> None:
    line.fail(lost_request)
    with pytest.raises(DeliveryUnknownError) as raised:
        await line.channel.send(push())
    receipt = await line.channel.send(push(), idempotency_key=raised.value.idempotency_key)
    assert receipt.message_id is not None
    assert len(line.api.pushes) == 1 and await line.used() == 1
    assert len(set(line.keys())) == 1


async def test_connect_error_refunds_the_quota(line: Line) -> None:
    line.fail(refused, refused, refused)  # every attempt of the (safe) retries
    with pytest.raises(ProviderUnavailableError) as raised:
        await line.channel.send(push())
    assert not isinstance(raised.value, DeliveryUnknownError)
    assert await line.used() == 0
    await line.channel.send(push())  # a fresh send, with a fresh key
    assert await line.used() == 1


async def test_success_with_an_unreadable_body_is_ambiguous(line: Line) -> None:
    line.fail(lambda request: httpx.Response(200, content=b"<html>gateway</html>"))
    with pytest.raises(DeliveryUnknownError) as raised:
        await line.channel.send(push())
    assert raised.value.http_status == 200 and raised.value.idempotency_key
    secret = kit.CONFIG.channel_access_token.get_secret_value()
    assert secret not in str(raised.value) and secret not in repr(raised.value)
    assert await line.used() == 1


async def test_repeating_an_accepted_key_is_a_success_counted_once(line: Line) -> None:
    key = str(uuid.uuid4())
    first = await line.channel.send(push(), idempotency_key=key)
    again = await line.channel.send(push(), idempotency_key=key)
    assert first.message_id is not None and again.message_id is None
    assert len(line.api.pushes) == 1 and await line.used() == 1


async def test_a_line_idempotency_key_is_a_uuid(line: Line) -> None:
    with pytest.raises(MessageInvalidError, match="UUID"):
        await line.channel.send(push(), idempotency_key="again")
    assert await line.used() == 0 and not line.keys()


async def test_multicast_retry_repeats_every_request_key_and_counts_once() -> None:
    config = kit.CONFIG.model_copy(update={"monthly_quota": 1000})
    channel = LineChannel(config, clock=FakeClock())
    api = FakeLineAPI(config, quota=1000)
    with respx.mock() as router:
        route = router.route(host="api.line.me").mock(side_effect=api)
        line = Line(channel, api, route)
        users = await line.befriend(*(f"U{i:032d}" for i in range(501)))
        line.fail(api, lost_answer(api))  # the second request's answer is lost
        with pytest.raises(DeliveryUnknownError) as raised:
            await channel.multicast(push("sale"), users)
        key = raised.value.idempotency_key
        assert key is not None and await line.used() == 501
        result = await channel.multicast(push("sale"), users, idempotency_key=key)
        assert len(result.sent) == 501
        assert line.keys()[2:] == line.keys()[:2] and len(set(line.keys())) == 2
        assert [len(body["to"]) for body in api.multicasts] == [500, 1]
        assert await line.used() == 501
        await channel.aclose()


async def test_a_multicast_retry_whose_requests_changed_sends_the_changed_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Someone unfollowed between a lost answer and the retry: the requests shift, and
    a shifted one gets a key of its own instead of being taken for one LINE accepted."""
    monkeypatch.setattr(line_outbound, "MAX_MULTICAST_RECIPIENTS", 2)
    config = kit.CONFIG.model_copy(update={"monthly_quota": 1000})
    channel = LineChannel(config, clock=FakeClock())
    api = FakeLineAPI(config, quota=1000)
    with respx.mock() as router:
        line = Line(channel, api, router.route(host="api.line.me").mock(side_effect=api))
        users = await line.befriend(*(f"U{i:032d}" for i in range(4)))
        line.fail(lost_answer(api))  # [U0, U1] went through; [U2, U3] was never sent
        with pytest.raises(DeliveryUnknownError) as raised:
            await channel.multicast(push("sale"), users)
        await channel.store.update_contact_state(users[0], follower=False)
        key = raised.value.idempotency_key
        result = await channel.multicast(push("sale"), users, idempotency_key=key)
        assert result.sent == users[1:]
        reached = [to for body in api.multicasts for to in body["to"]]
        assert set(reached) == {user.address for user in users}  # U2 not skipped
        await channel.aclose()


async def test_whatsapp_read_timeout_is_ambiguous_without_a_key() -> None:
    api = FakeWhatsAppAPI(whatsapp_kit.CONFIG)
    with respx.mock() as router:
        router.route(host=api.hosts[0]).mock(side_effect=lost_answer(api))
        channel = WhatsAppChannel(whatsapp_kit.CONFIG, retry=RetryPolicy(backoff=0))
        customer = channel.identity(whatsapp_kit.CUSTOMER)
        await channel.store.update_contact_state(customer, last_inbound_at=channel.clock.now())
        message = Message(contact=customer, text="hello")
        with pytest.raises(DeliveryUnknownError) as raised:
            await channel.send(message)
        assert raised.value.idempotency_key is None and raised.value.channel == "whatsapp"
        assert "may deliver it twice" in str(raised.value)
        assert len(router.calls) == 1  # never retried
        with pytest.raises(UnsupportedMessageError, match="no idempotency keys"):
            await channel.send(message, idempotency_key=str(uuid.uuid4()))
        await channel.aclose()


@pytest.mark.parametrize("engine", ["httpx", "aiohttp"])
async def test_both_engines_report_a_dropped_connection_with_the_key(engine: Engine) -> None:
    drop = Dropper()
    async with loopback(drop) as base:
        config = kit.CONFIG.model_copy(update={"api_base": base})
        channel = LineChannel(config, http_engine=engine, retry=RetryPolicy(backoff=0))
        await channel.store.update_contact_state(channel.identity(kit.CUSTOMER), follower=True)
        async with channel:
            with pytest.raises(DeliveryUnknownError) as raised:
                await channel.send(push())
            quota = quota_key(channel.name, channel.rules, channel.clock.now())
            assert await channel.store.counter(quota) == 1
    assert drop.requests == 1 and raised.value.idempotency_key


async def test_a_send_with_a_key_is_a_push_even_with_a_reply_token(line: Line) -> None:
    identity = line.channel.identity(kit.CUSTOMER)
    now = line.channel.clock.now()
    await line.channel.store.update_contact_state(identity, reply_token="r1", reply_token_at=now)
    await line.channel.send(push(), idempotency_key=str(uuid.uuid4()))  # replies have no key
    assert len(line.api.pushes) == 1 and not line.api.replies and await line.used() == 1


async def test_a_line_server_error_is_ambiguous_and_the_retry_is_counted_once(
    line: Line,
) -> None:
    line.fail(lambda request: httpx.Response(500, json={"message": "Internal server error"}))
    with pytest.raises(DeliveryUnknownError) as raised:
        await line.channel.send(push())
    assert raised.value.http_status == 500 and await line.used() == 1
    await line.channel.send(push(), idempotency_key=raised.value.idempotency_key)
    assert len(line.api.pushes) == 1 and await line.used() == 1


@pytest.mark.anyio
@pytest.mark.parametrize("outcome", ["cancelled", "unknown_without_key", "bug"])
async def test_a_send_that_may_be_out_keeps_its_units_and_key(outcome: str) -> None:
    """Cancelled, ambiguous without the provider's key, or failing on a bug after the
    request: the quota unit stays, and a retry with the same key takes no second one."""
    channel = kit.kit.build({"clock": FakeClock()})

    async def fails(messages: object, idempotency_key: str | None = None) -> Receipt:
        if outcome == "cancelled":
            await anyio.sleep(10)
        if outcome == "unknown_without_key":
            raise DeliveryUnknownError("read timeout", provider="line")
        raise RuntimeError("a bug after the request")

    channel._deliver_batch = fails  # type: ignore[method-assign,assignment]
    customer = channel.identity(kit.kit.customer)
    await channel.store.update_contact_state(customer, follower=True)
    used = quota_key("line", channel.rules, channel.clock.now())
    for _ in range(2):
        with anyio.move_on_after(0.05), contextlib.suppress(Exception):
            await channel.send(Message(contact=customer, text="hi"), idempotency_key="k1")
        assert await channel.store.counter(used) == 1
    await channel.aclose()
