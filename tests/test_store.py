import multiprocessing
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import anyio
import pytest
from pydantic import ValidationError

from chatbridge import Identity, MemoryStore, SQLiteStore, Store
from chatbridge.store.redis import RedisStore

pytestmark = pytest.mark.anyio
ALICE = Identity(channel="whatsapp", address="1")
NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    made: Store
    if request.param == "memory":
        made = MemoryStore()
    elif request.param == "sqlite":
        made = SQLiteStore(tmp_path / "s.db")
    else:
        made = RedisStore.from_url(request.getfixturevalue("redis_url"), prefix=f"t{uuid4().hex}:")
    yield made
    await made.aclose()


async def test_unknown_contact_has_default_state(store: Store) -> None:
    state = await store.contact_state(ALICE)
    assert state.last_inbound_at is None and state.follower is None and not state.opted_out


async def test_updates_merge(store: Store) -> None:
    await store.update_contact_state(ALICE, last_inbound_at=NOW)
    state = await store.update_contact_state(ALICE, follower=True)
    assert state.last_inbound_at == NOW and state.follower is True
    assert await store.contact_state(ALICE) == state


async def test_states_are_kept_per_channel_and_address(store: Store) -> None:
    await store.update_contact_state(ALICE, follower=True)
    assert (await store.contact_state(Identity(channel="whatsapp", address="1"))).follower
    for other in (Identity(channel="line", address="1"), Identity(channel="whatsapp", address="2")):
        assert (await store.contact_state(other)).follower is None


async def test_unknown_field_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown contact state fields"):
        await store.update_contact_state(ALICE, window=1)


@pytest.mark.parametrize(
    "changes",
    [
        {"last_inbound_at": datetime(2026, 3, 1)},  # naive: fields are AwareDatetime
        {"reply_token": "r", "reply_token_at": "not a time"},
        {"opted_out": "maybe"},
        {"follower": [True]},
        {"suppressed": 5},
    ],
)
async def test_invalid_change_is_refused_and_nothing_stored(
    store: Store, changes: dict[str, Any]
) -> None:
    before = await store.update_contact_state(ALICE, follower=True)
    with pytest.raises(ValidationError):
        await store.update_contact_state(ALICE, **changes)
    assert await store.contact_state(ALICE) == before


async def test_states_are_immutable(store: Store) -> None:
    """The default state is shared and a memory store hands out what it keeps."""
    for state in (await store.contact_state(ALICE), await store.update_contact_state(ALICE)):
        with pytest.raises(ValidationError, match="frozen"):
            state.follower = True  # type: ignore[misc]
    assert (await store.contact_state(ALICE)).follower is None


async def test_first_seen_deduplicates_within_ttl(store: Store) -> None:
    ttl = timedelta(hours=1)
    assert await store.first_seen("k", NOW, ttl)
    assert not await store.first_seen("k", NOW + timedelta(minutes=59), ttl)
    if not isinstance(store, RedisStore):  # Redis expires keys on its own clock
        assert await store.first_seen("k", NOW + timedelta(hours=2), ttl)


async def test_forget_drops_a_dedup_mark(store: Store) -> None:
    assert await store.first_seen("f", NOW, timedelta(hours=1))
    await store.forget("f")
    assert await store.first_seen("f", NOW, timedelta(hours=1))


async def test_counters_expire(store: Store) -> None:
    assert await store.consume("c", 1, None, expires_at=datetime.now(UTC) + timedelta(hours=1))
    assert await store.consume("c", 1, None)
    assert await store.counter("c") == 2


async def test_consume_never_passes_the_limit_under_concurrency(store: Store) -> None:
    results: list[bool] = []

    async def take() -> None:
        results.append(await store.consume("q", 1, 10))

    async with anyio.create_task_group() as group:
        for _ in range(25):
            group.start_soon(take)
    assert results.count(True) == 10
    assert await store.counter("q") == 10


async def test_workers_sharing_redis_never_overspend(redis_url: str) -> None:
    prefix = f"t{uuid4().hex}:"
    workers = [RedisStore.from_url(redis_url, prefix=prefix) for _ in range(4)]
    results: list[bool] = []

    async def take(worker: RedisStore) -> None:
        results.append(await worker.consume("quota", 1, 50))

    async with anyio.create_task_group() as group:
        for i in range(200):
            group.start_soon(take, workers[i % 4])
    assert results.count(True) == 50
    states = await workers[0].update_contact_state(ALICE, follower=True)
    assert (await workers[1].contact_state(ALICE)) == states
    for worker in workers:
        await worker.aclose()


async def test_sqlite_state_survives_reopening(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "state.db")
    await first.update_contact_state(ALICE, last_inbound_at=NOW)
    await first.consume("q", 3, None)
    await first.aclose()
    second = SQLiteStore(tmp_path / "state.db")
    assert (await second.contact_state(ALICE)).last_inbound_at == NOW
    assert await second.counter("q") == 3
    await second.aclose()


def _spend(path: str, attempts: int) -> int:
    """In another process: try ``attempts`` units of a quota of 50 in the SQLite file."""

    async def spend() -> int:
        store = SQLiteStore(path)
        taken = [await store.consume("quota", 1, 50) for _ in range(attempts)]
        await store.aclose()
        return taken.count(True)

    return anyio.run(spend)


def test_processes_sharing_sqlite_never_overspend(tmp_path: Path) -> None:
    """``serve --workers N`` on one host: N processes reserve quota in one SQLite file."""
    path = str(tmp_path / "state.db")
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        taken = pool.starmap(_spend, [(path, 40)] * 3)
    assert sum(taken) == 50, taken


async def test_a_change_of_state_is_atomic_whatever_runs_beside_it(store: Store) -> None:
    """Each change sees the state the others left (no read-then-write race): the latest
    interaction wins, whatever order the workers' changes run in."""

    def later(at: datetime) -> Any:
        def change(current: Any) -> dict[str, Any]:
            newer = current.last_inbound_at is None or current.last_inbound_at < at
            return {"last_inbound_at": at} if newer else {}

        return change

    times = [NOW + timedelta(seconds=n) for n in range(40)]
    async with anyio.create_task_group() as group:
        for at in reversed(times):
            group.start_soon(store.change_contact_state, ALICE, later(at))
    assert (await store.contact_state(ALICE)).last_inbound_at == times[-1]
    assert await store.change_contact_state(ALICE, lambda _: {}) == await store.contact_state(ALICE)
