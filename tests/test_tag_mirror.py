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
    writes = _writes(api)
    await mirrored.tag(customer, "not-mirrored")  # read, found in step: nothing written
    await mirrored.sync_tags()
    assert _writes(api) == writes
    await mirrored.tag(customer, "vip")
    await mirrored.sync_tags()
    before = len(api.requests)
    await mirrored.tag(customer, "vip")  # has it already: no change, no mark
    assert await mirrored.sync_tags() == 0 and len(api.requests) == before


def _writes(api: FakeWeChatAPI) -> int:
    return sum("batch" in request.url.path for request in api.requests)


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
    assert await history.sync_tags() == 2  # the untag's own mark, due once the first ended
    assert mirror.calls == [(WECHAT.address, frozenset({"vip"})), (WECHAT.address, frozenset())]


@pytest.mark.anyio
async def test_a_mark_made_during_a_sync_waits_for_it_in_other_processes(
    make_history: Callable[..., History],
) -> None:
    one, two = make_history(), make_history()
    first, second = _Mirror(), _Mirror()
    one.mirror_tags(first)
    two.mirror_tags(second)
    customer = await _customer(one, WECHAT)
    await one.tag(customer, "vip")

    async def meanwhile() -> None:
        await two.untag(customer, "vip")
        assert await two.sync_tags() == 0  # still the first one's: no two syncs at once

    first.during = meanwhile
    assert await one.sync_tags() == 2
    assert first.calls == [(WECHAT.address, frozenset({"vip"})), (WECHAT.address, frozenset())]
    assert second.calls == []


@pytest.mark.anyio
async def test_a_history_that_does_not_mirror_still_marks_its_changes(
    make_history: Callable[..., History], wx: Any
) -> None:
    channel, api = wx
    dashboard, worker = make_history(), make_history()
    worker.mirror_tags(channel.tag_mirror({"vip": "VIP"}))
    customer = await _customer(dashboard, WECHAT)
    await dashboard.tag(customer, "vip")
    assert await dashboard.sync_tags() == 0  # it mirrors nothing itself
    assert await worker.sync_tags() == 1
    assert _names(api, WECHAT.address) == {"VIP"}


@pytest.mark.anyio
async def test_tags_come_off_before_others_go_on_within_twenty(mirrored: History, wx: Any) -> None:
    channel, api = wx
    for index in range(19):
        await channel.tags.tag((await channel.tags.create(f"console {index}")).id, [WECHAT.address])
    customer = await _customer(mirrored, WECHAT)
    await mirrored.tag(customer, "complaint")
    await mirrored.sync_tags()
    await mirrored.untag(customer, "complaint")
    await mirrored.tag(customer, "vip")
    assert await mirrored.sync_tags() == 1
    assert "VIP 客户" in _names(api, WECHAT.address) and len(api.user_tags[WECHAT.address]) == 20


@pytest.mark.anyio
async def test_a_failing_identity_does_not_keep_tags_from_the_customer_s_others(
    mirrored: History, wx: Any
) -> None:
    _, api = wx
    customer = await _customer(mirrored, Identity(channel="wechat", address="not an openid"))
    await mirrored.link(WECHAT, Identity(channel="wechat", address="not an openid"))
    await mirrored.tag(customer, "vip")
    assert await mirrored.sync_tags() == 0
    assert _names(api, WECHAT.address) == {"VIP 客户"}
    assert "40003" in (await mirrored.tag_mirror_failures())[0].error


@pytest.mark.anyio
async def test_a_tag_another_process_just_made_is_used(mirrored: History, wx: Any) -> None:
    channel, api = wx
    one = await _customer(mirrored, WECHAT)
    await mirrored.tag(one, "complaint")
    await mirrored.sync_tags()  # the mirror has read the account's tags: no "VIP 客户"
    made = await channel.tags.create("VIP 客户")  # by another process
    other = await _customer(mirrored, OTHER)
    await mirrored.tag(other, "vip")
    assert await mirrored.sync_tags() == 1
    assert api.user_tags[OTHER.address] == [made.id]


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


@pytest.mark.anyio
async def test_a_sync_that_never_finishes_is_set_aside(history: History, clock: FakeClock) -> None:
    mirror = _Mirror()
    history.mirror_tags(mirror)
    customer = await _customer(history, WECHAT)
    await history.tag(customer, "vip")
    for _ in range(MAX_ATTEMPTS):
        mirror.during = _crash
        with pytest.raises(_Crash):
            await history.sync_tags()
        clock.advance(LEASE)
    assert await history.sync_tags() == 0
    [failure] = await history.tag_mirror_failures()
    assert failure.next_at is None and "never finished" in failure.error


async def _crash() -> None:
    raise _Crash


def test_config_names_served_channels_that_have_tags(tmp_path: Path) -> None:
    history = History.sqlite(tmp_path / "h.db")
    wechat = WeChatChannel(kit.CONFIG)
    Automation.from_config({"mirror_tags": {"wechat": ["vip"]}}, history, [wechat])
    Automation.from_config({"mirror_tags": {"wechat": ["vip", "b"]}}, history, [wechat])
    [mirror] = history.mirrors  # in place of the first
    assert mirror.tags == {"vip", "b"}
    for table, error in [
        ({"mirror_tags": ["vip"]}, "is a table"),
        ({"mirror_tags": {"line": ["vip"]}}, "no channel 'line' is served"),
        ({"mirror_tags": {"chat": ["vip"]}}, "chat has no customer tags"),
        ({"mirror_tags": {"wechat": "vip"}}, "a list of tags or a table"),
        ({"mirror_tags": {"wechat": {"vip": "x" * 31}}}, "45158"),
    ]:
        with pytest.raises(ConfigurationError, match=error):
            Automation.from_config(table, history, [wechat, Scripted()])


@pytest.mark.anyio
async def test_the_automation_tick_syncs_even_when_another_part_fails(
    mirrored: History, wx: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
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
    assert "broken failed: RuntimeError: fallback down" in caplog.text
