"""SQLiteFile's group commit: calls made together share a transaction, each in its own
savepoint, and a cancelled call that has not run never runs."""

import sqlite3
from pathlib import Path

import anyio
import pytest

from chatbridge.store.sqlite import SQLiteFile

pytestmark = pytest.mark.anyio


def insert(value: int) -> object:
    def work(db: sqlite3.Connection) -> int:
        db.execute("INSERT INTO t VALUES (?)", (value,))
        if value % 7 == 0:
            raise ValueError(value)
        return value

    return work


async def test_concurrent_calls_commit_together_and_fail_alone(tmp_path: Path) -> None:
    file = SQLiteFile(tmp_path / "f.db", "CREATE TABLE t (v INTEGER)")
    begins: list[str] = []
    file._db.set_trace_callback(lambda sql: begins.append(sql) if sql.startswith("BEGIN") else None)
    results: dict[int, object] = {}

    async def call(value: int) -> None:
        try:
            results[value] = await file.run(insert(value))  # type: ignore[arg-type]
        except ValueError as exc:
            results[value] = exc

    async with anyio.create_task_group() as group:
        for value in range(1, 101):
            group.start_soon(call, value)
    assert all(
        isinstance(results[v], ValueError) if v % 7 == 0 else results[v] == v for v in results
    )
    stored = await file.run(lambda db: [v for (v,) in db.execute("SELECT v FROM t ORDER BY v")])
    assert stored == [v for v in range(1, 101) if v % 7]
    assert len(begins) < 10  # 100 calls, a few transactions
    await file.aclose()


async def test_a_cancelled_call_that_has_not_run_never_runs(tmp_path: Path) -> None:
    file = SQLiteFile(tmp_path / "f.db", "CREATE TABLE t (v INTEGER)")
    ran: list[int] = []

    def slow(db: sqlite3.Connection) -> None:
        ran.append(0)
        import time

        time.sleep(0.2)

    async with anyio.create_task_group() as group:
        group.start_soon(file.run, slow)
        await anyio.sleep(0.05)  # slow is committing: the next calls wait
        with anyio.move_on_after(0.05):
            await file.run(lambda db: ran.append(1))
        group.start_soon(file.run, lambda db: ran.append(2))
    assert ran == [0, 2]
    await file.aclose()
