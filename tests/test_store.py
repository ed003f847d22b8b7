from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from chatbridge import Identity, MemoryStore, SQLiteStore, Store

pytestmark = pytest.mark.anyio
ALICE = Identity(channel="whatsapp", address="1")
NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    made: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "s.db")
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


async def test_unknown_field_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown contact state fields"):
        await store.update_contact_state(ALICE, window=1)


async def test_first_seen_deduplicates_within_ttl(store: Store) -> None:
    ttl = timedelta(hours=1)
    assert await store.first_seen("k", NOW, ttl)
    assert not await store.first_seen("k", NOW + timedelta(minutes=59), ttl)
    assert await store.first_seen("k", NOW + timedelta(hours=2), ttl)


async def test_consume_never_passes_the_limit_under_concurrency(store: Store) -> None:
    results: list[bool] = []

    async def take() -> None:
        results.append(await store.consume("q", 1, 10))

    async with anyio.create_task_group() as group:
        for _ in range(25):
            group.start_soon(take)
    assert results.count(True) == 10
    assert await store.counter("q") == 10


async def test_sqlite_state_survives_reopening(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "state.db")
    await first.update_contact_state(ALICE, last_inbound_at=NOW)
    await first.consume("q", 3, None)
    await first.aclose()
    second = SQLiteStore(tmp_path / "state.db")
    assert (await second.contact_state(ALICE)).last_inbound_at == NOW
    assert await second.counter("q") == 3
    await second.aclose()
