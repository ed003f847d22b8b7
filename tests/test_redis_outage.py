"""A RedisStore keeps working across a redis-server restart: stale pooled connections
are reconnected and the command sent again, so callers see no error."""

from datetime import UTC, datetime, timedelta

import anyio
import pytest

from chatbridge import Identity
from chatbridge.store.redis import RedisStore
from tests.loopback import free_port
from tests.redis_server import redis_server

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 3, 1, tzinfo=UTC)
ALICE = Identity(channel="whatsapp", address="1")


async def _every_operation(store: RedisStore, round_: str, tasks: int = 16) -> None:
    """Run each store operation from ``tasks`` concurrent tasks (filling the pool)."""

    async def one(i: int) -> None:
        assert await store.first_seen(f"{round_}:{i}", NOW, timedelta(hours=1))
        await store.forget(f"{round_}:{i}")
        assert await store.consume(f"{round_}:quota", 1, None)
        await store.update_contact_state(ALICE, follower=True)
        assert (await store.contact_state(ALICE)).follower is True

    async with anyio.create_task_group() as group:
        for i in range(tasks):
            group.start_soon(one, i)
    assert await store.counter(f"{round_}:quota") == tasks


async def test_operations_succeed_after_redis_restarts() -> None:
    port = free_port()
    with redis_server(port) as url:
        store = RedisStore.from_url(url)
        await _every_operation(store, "before")
    with redis_server(port):  # same port, empty server: every pooled connection is stale
        await _every_operation(store, "after")
        await store.aclose()
