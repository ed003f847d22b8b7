"""SQLiteFile's group commit: calls made together share a transaction, each in its own
savepoint; a cancelled call that has not run never runs, and one that started runs
once; a call whose error ends the transaction (a full disk) fails alone; any event
loop, in any thread, may use the file."""

import asyncio
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest

from chatbridge.store.sqlite import SQLiteFile

pytestmark = pytest.mark.anyio
Work = Callable[[sqlite3.Connection], object]


def insert(value: object, delay: float = 0.0, runs: Counter[object] | None = None) -> Work:
    def work(db: sqlite3.Connection) -> object:
        if runs is not None:
            runs[value] += 1
        db.execute("INSERT INTO t VALUES (?)", (value,))
        time.sleep(delay)
        if isinstance(value, int) and value % 7 == 0:
            raise ValueError(value)
        return value

    return work


async def rows(file: SQLiteFile) -> list[object]:
    return await file.run(lambda db: [v for (v,) in db.execute("SELECT v FROM t ORDER BY rowid")])


@pytest.fixture
async def file(tmp_path: Path) -> AsyncIterator[SQLiteFile]:
    made = SQLiteFile(tmp_path / "f.db", "CREATE TABLE t (v)")
    yield made
    await made.aclose()


async def test_concurrent_calls_commit_together_and_fail_alone(file: SQLiteFile) -> None:
    begins: list[str] = []
    file._db.set_trace_callback(lambda sql: begins.append(sql) if sql.startswith("BEGIN") else None)
    results: dict[int, object] = {}

    async def call(value: int) -> None:
        try:
            results[value] = await file.run(insert(value))
        except ValueError as exc:
            results[value] = exc

    async with anyio.create_task_group() as group:
        for value in range(1, 101):
            group.start_soon(call, value)
    assert all(isinstance(results[v], ValueError) == (v % 7 == 0) for v in results)
    assert sorted(await rows(file)) == [v for v in range(1, 101) if v % 7]
    assert len(begins) < 10  # 100 calls, a few transactions


async def test_a_cancelled_call_that_has_not_run_never_runs(file: SQLiteFile) -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(file.run, insert("slow", 0.2))
        await anyio.sleep(0.05)  # slow is committing: the next calls wait
        with anyio.move_on_after(0.05):
            await file.run(insert("cancelled"))
        group.start_soon(file.run, insert("after"))
    assert await rows(file) == ["slow", "after"]


async def test_a_call_cancelled_while_it_runs_runs_once_and_its_batch_mates_once(
    file: SQLiteFile,
) -> None:
    """asyncio's own cancellation (task.cancel, asyncio.timeout) is not shielded."""
    runs: Counter[object] = Counter()
    first = asyncio.create_task(file.run(insert("first", 0.2, runs)))
    await asyncio.sleep(0.01)
    running = asyncio.create_task(file.run(insert("running", 0.3, runs)))
    await asyncio.sleep(0.01)
    mate = asyncio.create_task(file.run(insert("mate", 0, runs)))
    await asyncio.sleep(0.3)  # "running" is in the thread now
    running.cancel()
    assert await first == "first" and await mate == "mate"
    with pytest.raises(asyncio.CancelledError):
        await running
    assert sorted(map(str, await rows(file))) == ["first", "mate", "running"]
    assert runs == Counter(first=1, running=1, mate=1)


async def test_an_error_that_ends_the_transaction_fails_only_its_call(file: SQLiteFile) -> None:
    file._db.execute("PRAGMA max_page_count = 20")  # a small, then full, disk
    slow = asyncio.create_task(file.run(insert("slow", 0.1)))
    await asyncio.sleep(0.01)
    calls = [insert("small"), insert(b"x" * 200_000), insert("small too")]
    results = await asyncio.gather(*(file.run(c) for c in calls), return_exceptions=True)
    assert await slow == "slow"
    assert results[0] == "small" and results[2] == "small too"
    assert isinstance(results[1], sqlite3.OperationalError) and "full" in str(results[1])
    assert await rows(file) == ["slow", "small", "small too"]


def test_event_loops_of_several_threads_share_one_file(tmp_path: Path) -> None:
    file = SQLiteFile(tmp_path / "f.db", "CREATE TABLE t (v)")
    done: list[int] = []

    def thread(offset: int) -> None:
        async def calls() -> None:
            for value in range(offset, offset + 100):
                await file.run(insert(f"{value}"))
            done.append(offset)

        asyncio.run(calls())

    threads = [threading.Thread(target=thread, args=(n * 1000,)) for n in range(2)]
    for each in threads:
        each.start()
    for each in threads:
        each.join(timeout=20)
    assert sorted(done) == [0, 1000]
    assert len(anyio.run(rows, file)) == 200
