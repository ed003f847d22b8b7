"""Customer tags mirrored onto WeChat user tags: on SQLite and PostgreSQL, against the
WeChat fake; marks made in the tag's transaction, retried with backoff, set aside
after MAX_ATTEMPTS, taken by one process at a time, and never lost to a crash."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import respx

from chatbridge import ConfigurationError, FakeClock
from chatbridge.automation import Automation
from chatbridge.conversations import History
from chatbridge.conversations.mirrors import FIRST_WAIT, LEASE, MAX_ATTEMPTS
from chatbridge.models import Identity
from chatbridge.wechat import WeChatChannel, kit
from chatbridge.wechat.fake import FakeWeChatAPI
from tests.scripted_channel import Scripted

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
WECHAT = Identity(channel="wechat", address=kit.CUSTOMER)
OTHER = Identity(channel="wechat", address="oLVPpjqs9BhvzwPj5A-vTYAX3GLd")
PHONE = Identity(channel="whatsapp", address="15551234567")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def wx(clock: FakeClock) -> AsyncIterator[tuple[WeChatChannel, FakeWeChatAPI]]:
    api = FakeWeChatAPI(kit.CONFIG)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.route(host=api.hosts[0]).mock(side_effect=api)
        channel = WeChatChannel(kit.CONFIG, clock=clock)
        yield channel, api
        await channel.aclose()


@pytest.fixture
def mirrored(history: History, wx: Any) -> History:
    history.mirror_tags(wx[0].tag_mirror({"vip": "VIP 客户", "complaint": "complaint"}))
    return history


async def _customer(history: History, identity: Identity) -> str:
    """The customer of ``identity`` (made with an email address of its own)."""
    mail = Identity(channel="email", address=f"{identity.address}@example.com")
    return (await history.link(identity, mail)).id


def _names(api: FakeWeChatAPI, openid: str) -> set[str]:
    return {api.tags[tag] for tag in api.user_tags.get(openid, [])}


@pytest.mark.anyio
async def test_tags_put_on_and_taken_off_follow_the_history(mirrored: History, wx: Any) -> None:
    _, api = wx
    customer = await _customer(mirrored, WECHAT)
    await mirrored.tag(customer, "vip", "not-mirrored")
    assert _names(api, WECHAT.address) == set()  # nothing before the sync runs
    assert await mirrored.sync_tags() == 1
    assert _names(api, WECHAT.address) == {"VIP 客户"}
    assert await mirrored.sync_tags() == 0  # done: the mark is gone
    await mirrored.untag(customer, "vip")
    await mirrored.tag(customer, "complaint")
    await mirrored.sync_tags()
    assert _names(api, WECHAT.address) == {"complaint"}


@pytest.mark.anyio
async def test_tags_the_history_does_not_mirror_are_left_alone(mirrored: History, wx: Any) -> None:
    channel, api = wx
    own = await channel.tags.create("set in the WeChat console")
    await channel.tags.tag(own.id, [WECHAT.address])
    customer = await _customer(mirrored, WECHAT)
    await mirrored.tag(customer, "vip")
    await mirrored.untag(customer, "vip")
    await mirrored.sync_tags()
    assert _names(api, WECHAT.address) == {"set in the WeChat console"}
    before = len(api.requests)
    await mirrored.tag(customer, "not-mirrored")  # no mark: nothing to sync
    assert await mirrored.sync_tags() == 0 and len(api.requests) == before
    await mirrored.tag(customer, "vip")
    await mirrored.sync_tags()
    before = len(api.requests)
    await mirrored.tag(customer, "vip")  # has it already: no change, no mark
    assert await mirrored.sync_tags() == 0 and len(api.requests) == before


@pytest.mark.anyio
async def test_linking_and_unlinking_mirror_the_merged_tags(mirrored: History, wx: Any) -> None:
    _, api = wx
    phone_customer = await _customer(mirrored, PHONE)
    await mirrored.tag(phone_customer, "vip")
    await _customer(mirrored, WECHAT)
    await mirrored.link(PHONE, WECHAT)  # the WeChat customer now shows under PHONE's
    await mirrored.sync_tags()
    assert _names(api, WECHAT.address) == {"VIP 客户"}
    await mirrored.unlink(WECHAT)
    await mirrored.sync_tags()
    assert _names(api, WECHAT.address) == set()


@pytest.mark.anyio
async def test_a_failing_sync_is_retried_then_set_aside_and_holds_up_no_other(
    mirrored: History, wx: Any, clock: FakeClock
) -> None:
    _, api = wx
    bad = Identity(channel="wechat", address="not an openid")  # the fake answers 40003
    failing = await _customer(mirrored, bad)
    fine = await _customer(mirrored, WECHAT)
    await mirrored.tag(failing, "vip")
    await mirrored.tag(fine, "vip")
    assert await mirrored.sync_tags() == 1
    assert _names(api, WECHAT.address) == {"VIP 客户"}
    [failure] = await mirrored.tag_mirror_failures()
    assert failure.customer_id == failing and failure.attempts == 1
    assert "40003" in failure.error and failure.next_at == T0 + FIRST_WAIT
    assert await mirrored.sync_tags() == 0  # not due yet
    for attempt in range(2, MAX_ATTEMPTS + 1):
        clock.advance(timedelta(hours=1))
        await mirrored.sync_tags()
        [failure] = await mirrored.tag_mirror_failures()
        assert failure.attempts == attempt
    assert failure.next_at is None  # set aside
    clock.advance(timedelta(days=30))
    requests = len(api.requests)
    await mirrored.sync_tags()
    assert len(api.requests) == requests
    await mirrored.mirror_again(failing)
    await mirrored.sync_tags()
    assert (await mirrored.tag_mirror_failures())[0].attempts == 1


@pytest.mark.anyio
async def test_a_tag_deleted_in_the_console_is_made_again_on_the_retry(
    mirrored: History, wx: Any, clock: FakeClock
) -> None:
    channel, api = wx
    customer = await _customer(mirrored, WECHAT)
    await mirrored.tag(customer, "vip")
    await mirrored.sync_tags()
    [vip] = api.user_tags[WECHAT.address]
    await channel.tags.delete(vip)  # the mirror still knows its old id
    other = await _customer(mirrored, OTHER)
    await mirrored.tag(other, "vip")
    assert await mirrored.sync_tags() == 0  # 45159: unknown tag
    clock.advance(FIRST_WAIT)
    assert await mirrored.sync_tags() == 1
    assert _names(api, OTHER.address) == {"VIP 客户"}


class _Mirror:
    """A mirror that records its calls and can act (or crash) in the middle of one."""

    channel = "wechat"
    tags = frozenset({"vip"})

    def __init__(self) -> None:
        self.calls: list[tuple[str, frozenset[str]]] = []
        self.during: Callable[[], Any] | None = None

    async def mirror(self, address: str, tags: frozenset[str]) -> None:
        self.calls.append((address, tags))
        if self.during is not None:
            during, self.during = self.during, None
            await during()


class _Crash(BaseException):
    pass


@pytest.mark.anyio
async def test_a_change_during_a_sync_is_synced_after_it(history: History) -> None:
    mirror = _Mirror()
    history.mirror_tags(mirror)
    customer = await _customer(history, WECHAT)
    await history.tag(customer, "vip")

    async def untag() -> None:
        await history.untag(customer, "vip")

    mirror.during = untag
    assert await history.sync_tags() == 1
    assert await history.sync_tags() == 1  # the untag's own mark
    assert mirror.calls == [(WECHAT.address, frozenset({"vip"})), (WECHAT.address, frozenset())]


@pytest.mark.anyio
async def test_a_crash_mid_sync_leaves_it_to_be_taken_again(
    make_history: Callable[..., History], clock: FakeClock
) -> None:
    one, two = make_history(), make_history()  # two processes over one database
    crashing, mirror = _Mirror(), _Mirror()
    one.mirror_tags(crashing)
    two.mirror_tags(mirror)
    customer = await _customer(one, WECHAT)
    await one.tag(customer, "vip")

    async def crash() -> None:
        assert await two.sync_tags() == 0  # taken by the other process meanwhile
        raise _Crash

    crashing.during = crash
    with pytest.raises(_Crash):
        await one.sync_tags()
    assert await two.sync_tags() == 0
    clock.advance(LEASE)
    assert await two.sync_tags() == 1
    assert mirror.calls == [(WECHAT.address, frozenset({"vip"}))]


def test_config_names_served_channels_that_have_tags(tmp_path: Path) -> None:
    history = History.sqlite(tmp_path / "h.db")
    wechat = WeChatChannel(kit.CONFIG)
    Automation.from_config({"mirror_tags": {"wechat": ["vip"]}}, history, [wechat])
    assert history.mirrors[0].tags == {"vip"}
    for table, error in [
        ({"mirror_tags": {"line": ["vip"]}}, "no channel 'line' is served"),
        ({"mirror_tags": {"chat": ["vip"]}}, "chat has no customer tags"),
        ({"mirror_tags": {"wechat": "vip"}}, "a list of tags or a table"),
        ({"mirror_tags": {"wechat": {"vip": "x" * 31}}}, "45158"),
    ]:
        with pytest.raises(ConfigurationError, match=error):
            Automation.from_config(table, history, [wechat, Scripted()])


@pytest.mark.anyio
async def test_the_automation_tick_syncs_even_when_another_part_fails(
    mirrored: History, wx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel, api = wx
    automation = Automation(mirrored, [channel])

    async def broken() -> None:
        raise RuntimeError("fallback down")

    monkeypatch.setattr(automation.fallback, "run_due", broken)
    customer = await _customer(mirrored, WECHAT)
    await mirrored.tag(customer, "vip")
    with pytest.raises(RuntimeError, match="fallback down"):
        await automation.tick()
    assert _names(api, WECHAT.address) == {"VIP 客户"}
