"""Expiry of dedup marks and counters: ExpiringKeys, MemoryStore and SQLiteStore sweeps."""

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chatbridge import MemoryStore, SQLiteStore
from chatbridge.store.expiry import SWEEP, ExpiringKeys
from chatbridge.store.sqlite import SWEEP_BATCH, SWEEP_EVERY, sweep_expired

NOW = datetime(2026, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_marks_expire_in_order_of_their_expiry() -> None:
    keys = ExpiringKeys()
    for expiry in (3.0, 1.0, 5.0, 2.0, 4.0):
        assert keys.mark(f"k{expiry:.0f}", 0.0, expiry)
    assert not keys.mark("k1", 0.5, 10.0)  # present and unexpired: unchanged
    for now in (1.0, 2.0, 3.0, 4.0, 5.0):
        keys.mark(f"new{now}", now, 100.0)  # each arrival sweeps
        assert [k for k in ("k1", "k2", "k3", "k4", "k5") if k in keys] == [
            f"k{i}" for i in range(int(now) + 1, 6)
        ]
    assert len(keys) == 5


def test_an_expired_key_counts_as_absent_before_it_is_swept() -> None:
    keys = ExpiringKeys()
    keys.mark("k", 0.0, 1.0)
    assert keys.expires_at("k") == 1.0
    assert keys.mark("k", 1.0, 2.0)  # expiry <= now is expired
    assert keys.expires_at("k") == 2.0


def test_remarking_extends_and_stale_heap_entries_are_skipped() -> None:
    keys = ExpiringKeys()
    keys.mark("k", 0.0, 10.0)
    assert keys.mark("k", 10.0, 30.0)  # expired, marked again until 30
    keys.set("j", 5.0)
    keys.set("j", 40.0)  # extended while present
    for now in range(11, 30):
        keys.mark(f"other{now}", float(now), 100.0)  # pops k's and j's old entries
    assert "k" in keys and "j" in keys
    assert not keys.mark("k", 29.0, 50.0)
    keys.mark("x", 30.0, 100.0)
    assert "k" not in keys and "j" in keys


def test_discard_forgets_a_key_and_its_old_expiry() -> None:
    keys = ExpiringKeys()
    keys.mark("k", 0.0, 10.0)
    keys.discard("k")
    keys.discard("never marked")
    assert "k" not in keys and len(keys) == 0
    assert keys.mark("k", 1.0, 20.0)
    keys.mark("x", 15.0, 100.0)  # pops the discarded entry at 10: k stays
    assert "k" in keys


def test_each_call_drops_a_bounded_number_of_keys() -> None:
    dropped: list[str] = []
    keys = ExpiringKeys(on_expire=dropped.append)
    for i in range(1000):
        keys.mark(f"old{i}", 0.0, 1.0)
    keys.mark("new0", 2.0, 100.0)
    assert len(dropped) == SWEEP
    for i in range(1, 1000):
        keys.mark(f"new{i}", 2.0, 100.0)
    assert len(dropped) == 1000 and len(keys) == 1000
    assert all(f"new{i}" in keys for i in range(1000))


def test_agrees_with_a_plain_dict_under_random_operations() -> None:
    rng = random.Random(7)  # noqa: S311 (a reproducible test sequence)
    keys, model = ExpiringKeys(), dict[str, float]()
    now = 0.0
    for _ in range(20_000):
        now += rng.random()
        key = f"k{rng.randrange(300)}"
        if rng.random() < 0.1:
            keys.discard(key)
            model.pop(key, None)
            continue
        expires_at = now + rng.choice((50.0, 50.0, rng.uniform(0, 100)))
        expected = key not in model or model[key] <= now
        if expected:
            model[key] = expires_at
        assert keys.mark(key, now, expires_at) == expected
        assert all(keys.expires_at(k) == at for k, at in model.items() if k in keys)
        assert all(k in keys for k, at in model.items() if at > now)  # only expired dropped


def test_discarded_entries_do_not_pile_up_in_the_heap() -> None:
    keys = ExpiringKeys()
    for i in range(10_000):
        keys.mark(f"k{i}", 0.0, 1e9)
        keys.discard(f"k{i}")
    assert len(keys) == 0
    assert len(keys._queue) + len(keys._heap) <= 2 * len(keys) + 65


@pytest.mark.anyio
async def test_memory_counters_with_expiry_are_dropped() -> None:
    store = MemoryStore()
    assert await store.consume("month", 5, None, expires_at=NOW + HOUR)
    assert await store.consume("forever", 1, None)
    assert await store.consume("extended", 1, None, expires_at=NOW + HOUR)
    assert await store.consume("extended", 1, None, expires_at=NOW + 3 * HOUR)
    assert await store.consume("month", 1, None)  # keeps its expiry
    assert await store.counter("month") == 6
    for i in range(10):
        await store.first_seen(f"e{i}", NOW + 2 * HOUR, HOUR)  # sweeps at its now
    assert await store.counter("month") == 0
    assert await store.counter("forever") == 1
    assert await store.counter("extended") == 2


@pytest.mark.anyio
async def test_memory_marks_expire_at_the_callers_now() -> None:
    store = MemoryStore()
    assert await store.first_seen("k", NOW, HOUR)
    assert not await store.first_seen("k", NOW + HOUR - timedelta(seconds=1), HOUR)
    assert await store.first_seen("k", NOW + HOUR, HOUR)
    await store.forget("k")
    assert await store.first_seen("k", NOW + HOUR, HOUR)


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    return {name for (name,) in rows}


@pytest.mark.anyio
async def test_sqlite_adds_expiry_indexes_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the schema before the indexes
        db.executescript(
            "CREATE TABLE seen (key TEXT PRIMARY KEY, expires_at REAL NOT NULL);"
            "CREATE TABLE counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL, expires_at REAL);"
        )
        db.execute("INSERT INTO seen VALUES ('old', ?)", ((NOW + HOUR).timestamp(),))
        db.execute("INSERT INTO counters VALUES ('q', 3, NULL)")
    assert not {"seen_expires_at", "counters_expires_at"} & _indexes(path)
    store = SQLiteStore(path)
    assert {"seen_expires_at", "counters_expires_at"} <= _indexes(path)
    assert not await store.first_seen("old", NOW, HOUR)
    assert await store.counter("q") == 3
    await store.aclose()


def test_sweep_expired_deletes_a_bounded_batch_of_expired_rows() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE counters (key TEXT PRIMARY KEY, value INTEGER, expires_at REAL)")
    db.execute("CREATE INDEX counters_expires_at ON counters (expires_at)")
    rows = [(f"old{i}", 1, 10.0) for i in range(25)]
    rows += [("at", 1, 20.0), ("later", 1, 21.0), ("never", 1, None)]
    db.executemany("INSERT INTO counters VALUES (?, ?, ?)", rows)
    assert sweep_expired(db, "counters", 20.0, batch=10) == 10
    assert sweep_expired(db, "counters", 20.0, batch=10) == 10
    assert sweep_expired(db, "counters", 20.0, batch=10) == 6
    assert sweep_expired(db, "counters", 20.0, batch=10) == 0
    left = {key for (key,) in db.execute("SELECT key FROM counters")}
    assert left == {"later", "never"}


@pytest.mark.anyio
async def test_sqlite_first_seen_sweeps_now_and_then(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    await SQLiteStore(path).aclose()  # creates the schema
    with sqlite3.connect(path) as db:
        expired = NOW.timestamp() - 1
        db.executemany(
            "INSERT INTO seen VALUES (?, ?)", ((f"old{i}", expired) for i in range(3 * SWEEP_BATCH))
        )
    store = SQLiteStore(path)

    def count() -> int:
        with sqlite3.connect(path) as db:
            return int(db.execute("SELECT count(*) FROM seen").fetchone()[0])

    assert await store.first_seen("e0", NOW, HOUR)  # the first call sweeps one batch
    assert count() == 2 * SWEEP_BATCH + 1
    for i in range(1, SWEEP_EVERY):
        assert await store.first_seen(f"e{i}", NOW, HOUR)
    assert count() == 2 * SWEEP_BATCH + SWEEP_EVERY  # no sweep until SWEEP_EVERY calls
    assert await store.first_seen("next", NOW, HOUR)
    assert count() == SWEEP_BATCH + SWEEP_EVERY + 1
    assert await store.first_seen(f"old{3 * SWEEP_BATCH - 1}", NOW, HOUR)  # expired: absent
    await store.aclose()
