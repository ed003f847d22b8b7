"""The outbox contract, for every backend: dedup marks and records written in one
atomic step, one-time values refused on replay, leases, retries, dead letters."""

import sqlite3
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import anyio
import pytest

from chatbridge import MessageReceived
from chatbridge.errors import OutboxFullError, ReplayError
from chatbridge.server.outbox import Incoming, Mark, MemoryOutbox, Outbox, SQLiteOutbox, records
from chatbridge.server.outbox.redis import RedisOutbox

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 3, 1, tzinfo=UTC)
LEASE = timedelta(milliseconds=300)  # Redis measures leases on its own clock
DAY = timedelta(days=1)


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def outbox(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Outbox]:
    made: Outbox
    if request.param == "memory":
        made = MemoryOutbox(lease=LEASE)
    elif request.param == "sqlite":
        made = SQLiteOutbox(tmp_path / "o.db", lease=LEASE)
    else:
        url = request.getfixturevalue("redis_url")
        made = RedisOutbox.from_url(url, prefix=f"t{uuid4().hex}:", lease=LEASE)
    yield made
    await made.aclose()


def incoming(key: str, payload: bytes = b"p", ttl: timedelta = DAY) -> Incoming:
    return Incoming(Mark(key, NOW + ttl), payload)


async def test_new_records_are_queued_and_redeliveries_are_not(outbox: Outbox) -> None:
    assert await outbox.accept([incoming("a", b"A"), incoming("b", b"B")], NOW) == [True, True]
    assert await outbox.accept([incoming("a", b"A2"), incoming("c", b"C")], NOW) == [False, True]
    assert [item.payload for item in await outbox.due(NOW, 10)] == [b"A", b"B", b"C"]


async def test_a_replayed_one_time_value_refuses_the_whole_step(outbox: Outbox) -> None:
    token = Mark("token-1", NOW + timedelta(minutes=10))
    assert await outbox.accept([incoming("a")], NOW, once=[token]) == [True]
    with pytest.raises(ReplayError):
        await outbox.accept([incoming("b")], NOW, once=[Mark("token-2", token.expires_at), token])
    assert len(await outbox.due(NOW, 10)) == 1  # b was not queued...
    assert await outbox.accept([incoming("b")], NOW, once=[Mark("token-2", token.expires_at)])
    assert len(await outbox.due(NOW, 10)) == 1  # ...and token-2 was not kept


async def test_marks_expire(outbox: Outbox) -> None:
    ttl = timedelta(milliseconds=200)
    assert await outbox.accept([incoming("a", ttl=ttl)], NOW) == [True]
    await anyio.sleep(0.3)  # Redis expires marks on its own clock
    assert await outbox.accept([incoming("a", ttl=ttl)], NOW + timedelta(seconds=1)) == [True]


async def test_taken_records_are_leased_until_acked_or_the_lease_ends(outbox: Outbox) -> None:
    await outbox.accept([incoming("a"), incoming("b")], NOW)
    first, second = await outbox.due(NOW, 10)
    assert await outbox.due(NOW, 10) == []  # leased: no second worker takes them
    await outbox.ack(first.id)
    await anyio.sleep(LEASE.total_seconds() + 0.05)
    [again] = await outbox.due(NOW + LEASE, 10)  # the holder crashed: it comes back...
    assert again.id == second.id and again.payload == second.payload
    assert (second.attempts, again.attempts) == (0, 1)  # ...and that was an attempt


async def test_released_records_are_due_at_once_in_order_with_their_attempts(
    outbox: Outbox,
) -> None:
    await outbox.accept([incoming(key, key.encode()) for key in "abcd"], NOW)
    a, b, c = await outbox.due(NOW, 3)
    await outbox.release(b.id)
    await outbox.ack(a.id, c.id)
    back = await outbox.due(NOW, 10)
    assert [(item.payload, item.attempts) for item in back] == [(b"b", 0), (b"d", 0)]
    assert (await outbox.pending())[0] == 2
    await outbox.ack(*(item.id for item in back))
    assert await outbox.pending() == (0, None)


async def test_retry_counts_attempts_and_dead_letters_keep_the_reason(outbox: Outbox) -> None:
    await outbox.accept([incoming("a", b"A")], NOW)
    [item] = await outbox.due(NOW, 10)
    await outbox.retry(item.id, NOW + timedelta(seconds=5), "boom")
    assert await outbox.due(NOW + timedelta(seconds=4), 10) == []
    [item] = await outbox.due(NOW + timedelta(seconds=5), 10)
    assert item.attempts == 1
    await outbox.dead(item.id, "gave up: boom")
    [dead] = await outbox.dead_letters()
    assert (dead.item.payload, dead.item.attempts, dead.error) == (b"A", 2, "gave up: boom")
    assert await outbox.due(NOW + DAY, 10) == []
    await outbox.requeue(dead.item.id, NOW)
    [back] = await outbox.due(NOW, 10)
    assert (back.payload, back.attempts) == (b"A", 0) and await outbox.dead_letters() == []


def first_release_outbox(path: Path) -> sqlite3.Connection:
    """A SQLite outbox file as the first release made it (TEXT payloads, no ``taken``)."""
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL,"
        " due_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, error TEXT,"
        " dead INTEGER NOT NULL DEFAULT 0)"
    )
    return old


async def test_sqlite_reads_the_records_of_the_first_release(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = first_release_outbox(path)
    received = MessageReceived.model_validate(
        {
            "channel": "whatsapp",
            "event_id": "wamid.1",
            "timestamp": NOW,
            "message": {"contact": {"channel": "whatsapp", "address": "1"}, "text": "hi"},
        }
    )
    legacy = f'{{"route": "whatsapp", "event": {received.model_dump_json()}}}'
    old.execute("INSERT INTO outbox (payload, due_at) VALUES (?, 0)", (legacy,))
    old.commit()
    old.close()
    outbox = SQLiteOutbox(path)
    [item] = await outbox.due(NOW, 10)
    assert records.decode(item.payload)[:2] == ("whatsapp", received)
    await outbox.aclose()


async def test_redis_accept_resent_after_a_lost_reply_is_not_a_replay(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py resends a command whose connection broke; the script may have run."""
    outbox = RedisOutbox.from_url(redis_url, prefix=f"t{uuid4().hex}:")
    monkeypatch.setattr("chatbridge.server.outbox.redis.uuid4", lambda: uuid4().__class__(int=7))
    token = [Mark("token", NOW + DAY)]
    assert await outbox.accept([incoming("a")], NOW, once=token) == [True]
    assert await outbox.accept([incoming("a")], NOW, once=token) == [True]  # the resend
    assert len(await outbox.due(NOW, 10)) == 1
    monkeypatch.undo()
    with pytest.raises(ReplayError):  # another request with the same token
        await outbox.accept([incoming("b")], NOW, once=token)
    await outbox.aclose()


async def test_an_event_twice_in_one_request_is_new_once(outbox: Outbox) -> None:
    assert await outbox.accept([incoming("a"), incoming("a")], NOW) == [True, False]
    assert len(await outbox.due(NOW, 10)) == 1


# -- the Redis stream: consumers, claims after a crash, bounded length -------------------


def _redis(url: str, prefix: str, **options: object) -> RedisOutbox:
    return RedisOutbox.from_url(url, prefix=prefix, lease=LEASE, **options)  # type: ignore[arg-type]


async def test_redis_workers_never_take_the_same_entry(redis_url: str) -> None:
    prefix = f"t{uuid4().hex}:"
    workers = [_redis(redis_url, prefix) for _ in range(3)]
    await workers[0].accept([incoming(f"k{n}", str(n).encode()) for n in range(300)], NOW)
    taken: list[list[bytes]] = [[] for _ in workers]

    async def work(index: int) -> None:
        while items := await workers[index].due(NOW, 7):
            taken[index] += [item.payload for item in items]
            await workers[index].ack(*(item.id for item in items))

    async with anyio.create_task_group() as group:
        for index in range(len(workers)):
            group.start_soon(work, index)
    every = [payload for payloads in taken for payload in payloads]
    assert sorted(every) == sorted(str(n).encode() for n in range(300))  # each once
    assert await workers[0].pending() == (0, None)
    for worker in workers:
        await worker.aclose()


async def test_redis_entries_of_a_dead_worker_are_claimed_with_an_attempt(redis_url: str) -> None:
    prefix = f"t{uuid4().hex}:"
    dead, alive = _redis(redis_url, prefix), _redis(redis_url, prefix)
    await dead.accept([incoming("a", b"A"), incoming("b", b"B")], NOW)
    assert len(await dead.due(NOW, 10)) == 2  # then it dies without settling them
    assert await alive.due(NOW, 10) == []
    await anyio.sleep(LEASE.total_seconds() + 0.05)
    claimed = await alive.due(NOW, 10)
    assert [(item.payload, item.attempts) for item in claimed] == [(b"A", 1), (b"B", 1)]
    await alive.retry(claimed[0].id, NOW, "boom")  # the crash and this failure count
    await alive.ack(claimed[1].id)
    [again] = await alive.due(NOW, 10)
    assert (again.payload, again.attempts) == (b"A", 2)
    for outbox in (dead, alive):
        await outbox.aclose()


async def test_redis_refuses_intake_at_its_length_without_losing_a_record(redis_url: str) -> None:
    outbox = _redis(redis_url, f"t{uuid4().hex}:", max_length=2)
    assert await outbox.accept([incoming("a"), incoming("b")], NOW) == [True, True]
    with pytest.raises(OutboxFullError):
        await outbox.accept([incoming("c")], NOW)
    items = await outbox.due(NOW, 10)
    await outbox.ack(*(item.id for item in items))
    assert await outbox.accept([incoming("c")], NOW) == [True]  # no mark was left behind
    await outbox.aclose()


async def test_redis_calls_beyond_the_pool_wait_for_a_connection(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py's own pool raises "Too many connections" past its size: a burst of
    webhooks would get 503s."""
    monkeypatch.setattr("chatbridge.store.redis.MAX_CONNECTIONS", 2)
    outbox = _redis(redis_url, f"t{uuid4().hex}:")
    results = await _gather(*(outbox.accept([incoming(f"k{n}")], NOW) for n in range(150)))
    assert results == [[True]] * 150
    await outbox.aclose()


async def _gather(*calls: Awaitable[list[bool]]) -> list[list[bool]]:
    results: list[list[bool]] = [[] for _ in calls]

    async def run(index: int, call: Awaitable[list[bool]]) -> None:
        results[index] = await call

    async with anyio.create_task_group() as group:
        for index, call in enumerate(calls):
            group.start_soon(run, index, call)
    return results


async def test_sqlite_adds_the_taken_column_to_an_older_file_once(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    first_release_outbox(path).close()
    first, second = SQLiteOutbox(path), SQLiteOutbox(path)  # two processes starting
    await first.accept([incoming("a")], NOW)
    [item] = await second.due(NOW, 10)
    assert item.attempts == 0
    for outbox in (first, second):
        await outbox.aclose()


async def test_redis_drops_consumers_gone_without_entries(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"t{uuid4().hex}:"
    gone, alive = _redis(redis_url, prefix), _redis(redis_url, prefix)
    await gone.accept([incoming("a")], NOW)
    [item] = await gone.due(NOW, 10)
    await gone.ack(item.id)  # then its process died, never closing
    monkeypatch.setattr("chatbridge.server.outbox.redis._PRUNE_EVERY", 1)
    monkeypatch.setattr("chatbridge.server.outbox.redis._PRUNE_IDLE", timedelta(0))
    await anyio.sleep(0.01)
    await alive.due(NOW, 10)
    consumers = await alive._redis.xinfo_consumers(f"{prefix}outbox:stream", "chatbridge")
    assert gone._consumer.encode() not in [c["name"] for c in consumers]
    await alive.aclose()
    await gone._redis.aclose()  # its connections only: it never left the group
