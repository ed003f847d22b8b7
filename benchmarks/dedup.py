"""Dedup cost as the data grows: per-event ``first_seen`` of each store and ``accept`` of
each outbox (the webhook app's dedup), with 10k and 1M marks stored.

``python -m benchmarks.dedup`` runs it alone and rewrites its section of
docs/benchmarks.md; ``python -m benchmarks.run`` includes it. Redis rows start their own
redis-server (one per subject, so each has its own keyspace) and are skipped without it.

Stored marks expire spread over one TTL, and each subject's clock advances TTL/size per
event, so marks expire as fast as new ones arrive (the steady state of a busy webhook);
Redis expires on its own clock, so its marks outlive the run. To add a row, append
``(name, factory)`` to :data:`ROWS`: the factory gets the number of marks to store and a
scratch directory and returns a :class:`Subject`.
"""

from __future__ import annotations

import gc
import shutil
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import anyio

if TYPE_CHECKING:
    from redis.asyncio import Redis

from benchmarks.report import rewrite_section
from chatbridge.server.outbox import Incoming, Mark, MemoryOutbox, Outbox, SQLiteOutbox
from chatbridge.store.memory import MemoryStore
from chatbridge.store.sqlite import SQLiteStore

SIZES = (10_000, 1_000_000)
ROUNDS = 9
EVENTS = 2_000
TTL = timedelta(hours=1)
START = datetime(2026, 3, 1, tzinfo=UTC)
HEADING = "## Dedup cost as the store grows"


class Subject(NamedTuple):
    """A dedup implementation holding ``size`` marks: ``first_seen(key, now)`` (TTL fixed)."""

    first_seen: Callable[[str, datetime], Awaitable[bool]]
    close: Callable[[], Awaitable[None]]


Factory = Callable[[int, Path], Awaitable[Subject]]


def _history(size: int) -> list[tuple[str, float]]:
    """``size`` marks made over the TTL before START: (key, expires_at), expiring in order."""
    step = TTL.total_seconds() / size
    return [(f"old{i}", START.timestamp() + i * step) for i in range(size)]


async def floor(size: int, _: Path) -> Subject:
    """A bare dict and FIFO queue (look up, insert, drop the oldest): what any in-memory
    O(1) dedup pays, CPU caches included (a 1M-key dict misses them more often)."""
    marks = dict(_history(size))
    queue = deque((at, key) for key, at in marks.items())

    async def first_seen(key: str, now: datetime) -> bool:
        if key in marks:
            return False
        marks[key] = now.timestamp() + TTL.total_seconds()
        queue.append((marks[key], key))
        del marks[queue.popleft()[1]]
        return True

    async def close() -> None:
        marks.clear()

    return Subject(first_seen, close)


async def memory(size: int, _: Path) -> Subject:
    store = MemoryStore()
    for key, expires_at in _history(size):
        await store.first_seen(key, datetime.fromtimestamp(expires_at, UTC) - TTL, TTL)
    return Subject(lambda key, now: store.first_seen(key, now, TTL), store.aclose)


async def sqlite(size: int, scratch: Path) -> Subject:
    import sqlite3

    path = scratch / f"dedup-{size}.db"
    await SQLiteStore(path).aclose()  # the schema, indexes included
    with sqlite3.connect(path) as db:  # one transaction
        db.executemany("INSERT INTO seen VALUES (?, ?)", _history(size))
    store = SQLiteStore(path)
    return Subject(lambda key, now: store.first_seen(key, now, TTL), store.aclose)


_FILL = """
for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  redis.call('SET', KEYS[1] .. i, 1, 'PX', tonumber(ARGV[3]) + i)
end
"""


async def _filled_redis(size: int, mark_prefix: str) -> tuple[Redis, ExitStack]:
    """A client of a new redis-server holding ``size`` marks named ``mark_prefix`` + i."""
    from chatbridge.store.redis import connect
    from tests.redis_server import redis_server

    servers = ExitStack()
    client = connect(servers.enter_context(redis_server()))
    fill = client.register_script(_FILL)
    ttl_ms = int(TTL.total_seconds() * 1000)
    for first in range(0, size, 100_000):  # Lua: 100k marks per call
        last = min(size, first + 100_000) - 1
        await fill(keys=[mark_prefix], args=[first, last, ttl_ms])
    return client, servers


def _closing(subject: Subject, servers: ExitStack) -> Subject:
    async def close() -> None:
        await subject.close()
        servers.close()

    return Subject(subject.first_seen, close)


async def redis(size: int, _: Path) -> Subject:
    from chatbridge.store.redis import RedisStore

    client, servers = await _filled_redis(size, "bench:seen:old")
    store = RedisStore(client, prefix="bench:")
    return _closing(
        Subject(lambda key, now: store.first_seen(key, now, TTL), store.aclose), servers
    )


def _accepting(outbox: Outbox) -> Subject:
    """An outbox's dedup, as the webhook app uses it: one atomic accept per event."""

    async def first_seen(key: str, now: datetime) -> bool:
        [fresh] = await outbox.accept([Incoming(Mark(key, now + TTL), b"{}")], now)
        return fresh

    return Subject(first_seen, outbox.aclose)


async def memory_outbox(size: int, _: Path) -> Subject:
    outbox = MemoryOutbox()
    for key, expires_at in _history(size):
        outbox._marks.set(key, expires_at)
    return _accepting(outbox)


async def sqlite_outbox(size: int, scratch: Path) -> Subject:
    import sqlite3

    path = scratch / f"outbox-{size}.db"
    await SQLiteOutbox(path).aclose()  # the schema, indexes included
    with sqlite3.connect(path) as db:  # one transaction
        db.executemany("INSERT INTO marks VALUES (?, ?)", _history(size))
    return _accepting(SQLiteOutbox(path))


async def redis_outbox(size: int, _: Path) -> Subject:
    from chatbridge.server.outbox.redis import RedisOutbox

    client, servers = await _filled_redis(size, "bench:outbox:mark:old")
    return _closing(_accepting(RedisOutbox(client, prefix="bench:")), servers)


ROWS: list[tuple[str, Factory]] = [
    ("floor: dict + queue", floor),
    ("MemoryStore", memory),
    ("SQLiteStore", sqlite),
    ("RedisStore", redis),
    ("MemoryOutbox (accept)", memory_outbox),
    ("SQLiteOutbox (accept)", sqlite_outbox),
    ("RedisOutbox (accept)", redis_outbox),
]


class Timing(NamedTuple):
    cpu: list[float]
    wall: list[float]


async def _measure() -> dict[tuple[str, int], Timing | str]:
    results: dict[tuple[str, int], Timing | str] = {}
    with tempfile.TemporaryDirectory() as scratch:
        subjects: dict[tuple[str, int], Subject] = {}
        for name, factory in ROWS:
            for size in SIZES:
                if name.startswith("Redis") and shutil.which("redis-server") is None:
                    results[name, size] = "n/a (redis-server not installed)"
                    continue
                subjects[name, size] = await factory(size, Path(scratch))
                results[name, size] = Timing([], [])
        gc.collect()
        events = dict.fromkeys(subjects, 0)
        for round_ in range(ROUNDS):  # interleaved: every subject once per round
            for (name, size), subject in subjects.items():
                done, step = events[name, size], TTL / size
                calls = [(f"new{round_}:{i}", START + (done + i) * step) for i in range(EVENTS)]
                cpu, wall = time.process_time(), time.perf_counter()
                for key, now in calls:
                    await subject.first_seen(key, now)
                timing = results[name, size]
                assert isinstance(timing, Timing)
                timing.cpu.append((time.process_time() - cpu) / EVENTS)
                timing.wall.append((time.perf_counter() - wall) / EVENTS)
                events[name, size] += EVENTS
        for subject in subjects.values():
            await subject.close()
    return results


def _cell(samples: list[float]) -> str:
    us = [s * 1e6 for s in samples]
    return f"{statistics.median(us):,.1f} ({min(us):,.1f}-{max(us):,.1f})"


def section() -> list[str]:
    """Run the benchmark; its section of docs/benchmarks.md as lines."""
    started = time.perf_counter()
    results = anyio.run(_measure)
    small, large = SIZES
    lines = [
        f"{HEADING} (`first_seen` / `accept`, µs per event, lower is better)",
        "",
        f"Written by `python -m benchmarks.dedup` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.",
        f"Median (min-max) of {ROUNDS} interleaved rounds of {EVENTS:,} new events each, with",
        f"{small:,} or {large:,} marks stored, marks expiring as fast as new ones arrive. CPU",
        "is this process's (SQLite's worker thread included, not redis-server's); wall also",
        "counts waiting (disk sync, the Redis round trip). Target: 1M / 10k ≈ 1, no",
        "per-event work that grows with the stored marks.",
        "",
        f"| store | clock | {small:,} marks | {large:,} marks | {large:,} / {small:,} |",
        "|---|---|---:|---:|---:|",
    ]
    for name, _ in ROWS:
        few, many = results[name, small], results[name, large]
        if not isinstance(few, Timing) or not isinstance(many, Timing):
            lines.append(f"| {name} | | {few} | {many} | |")
            continue
        for clock in ("cpu", "wall"):
            a, b = getattr(few, clock), getattr(many, clock)
            ratio = statistics.median(b) / statistics.median(a)
            lines.append(f"| {name} | {clock} | {_cell(a)} | {_cell(b)} | {ratio:.2f} |")
    lines += [
        "",
        "What remains of the growth in memory is the CPU caches: the floor row, a bare dict and",
        "queue, grows alike, since a 1M-key dict misses them more often. Before expiry went",
        "bounded (2026-12-01, this benchmark on the previous code, fewer events), 1M marks cost",
        "546 µs per event in MemoryStore (all marks rescanned every 1024 inserts, 193x its 10k",
        "cost) and 35.7 ms in SQLiteStore (an unindexed DELETE of expired rows per call, 71x).",
        f"The run took {time.perf_counter() - started:.0f} s, setup included.",
        "",
    ]
    return lines


def main() -> None:
    """Rewrite only this benchmark's section of docs/benchmarks.md (appended if absent)."""
    rewrite_section(HEADING, section())


if __name__ == "__main__":
    main()
