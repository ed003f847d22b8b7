"""The embedded default store: one SQLite file that survives restarts."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import anyio
import anyio.to_thread
import sniffio

from chatbridge.models import Identity
from chatbridge.store.base import DEFAULT_STATE, Change, ContactState, merged

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS contact_state (
    channel TEXT NOT NULL, address TEXT NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (channel, address));
CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY, value INTEGER NOT NULL, expires_at REAL);
CREATE INDEX IF NOT EXISTS seen_expires_at ON seen (expires_at);
CREATE INDEX IF NOT EXISTS counters_expires_at ON counters (expires_at);
"""

SWEEP_EVERY = 128
"""``first_seen`` calls between two sweeps of expired rows."""
SWEEP_BATCH = 4 * SWEEP_EVERY
"""Rows a sweep may delete per table: more than were added since the last one."""


def sweep_expired(db: sqlite3.Connection, table: str, now: float, batch: int = SWEEP_BATCH) -> int:
    """Delete at most ``batch`` rows of ``table`` whose ``expires_at <= now``, found
    through an index on ``expires_at``; returns how many were deleted. Run it in the
    caller's transaction, every so many inserts, so no call pays for the whole table."""
    cursor = db.execute(
        f"DELETE FROM {table} WHERE rowid IN "  # noqa: S608 (table names are ours)
        f"(SELECT rowid FROM {table} WHERE expires_at <= ? LIMIT ?)",
        (now, batch),
    )
    return cursor.rowcount


class _Call(Generic[_T]):
    """One ``SQLiteFile.run`` call: its work, then its outcome, handed back to the
    caller's event loop."""

    def __init__(self, work: Callable[[sqlite3.Connection], _T]) -> None:
        self.work = work
        self.value: _T | None = None
        self.error: BaseException | None = None
        self.done = anyio.Event()
        self.call_soon = _call_soon_threadsafe()
        self.abandoned = False  # its caller was cancelled: skip it if not started

    def finish(self) -> None:
        """Wake the caller (from the writer thread)."""
        with contextlib.suppress(RuntimeError):  # its event loop is closed: nobody waits
            self.call_soon(self.done.set)

    def result(self) -> _T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


def _call_soon_threadsafe() -> Callable[[Callable[[], object]], object]:
    """A function that runs a callback on the current event loop from another thread,
    without waiting."""
    if sniffio.current_async_library() == "trio":
        trio = importlib.import_module("trio")
        return cast(
            Callable[[Callable[[], object]], object],
            trio.lowlevel.current_trio_token().run_sync_soon,
        )
    return asyncio.get_running_loop().call_soon_threadsafe


class SQLiteFile:
    """One SQLite file in WAL mode, written by one thread of its own in ``BEGIN
    IMMEDIATE`` transactions: atomic for every task of this process (of any event loop)
    and for other processes sharing the file. ``pragmas`` are set on opening.

    The calls that arrive while a transaction is being committed are committed together
    in the next one (group commit: one disk sync for many webhooks), each inside its own
    savepoint, so a call that raises is rolled back alone. A cancelled caller's call is
    skipped if it has not started; once started, it runs to its end. No lock is held
    across an await."""

    def __init__(self, path: str | Path, schema: str, *pragmas: str) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        for pragma in ("journal_mode=WAL", *pragmas):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.executescript(schema)
        self._calls: queue.SimpleQueue[_Call[Any] | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._starting = threading.Lock()

    async def run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``work(connection)`` in a transaction, rolled back if it raises."""
        call = _Call(work)
        self._start()
        self._calls.put(call)
        try:
            await call.done.wait()
        except BaseException:
            call.abandoned = True
            raise
        return call.result()

    def _start(self) -> None:
        with self._starting:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write, name="chatbridge-sqlite", daemon=True
                )
                self._writer.start()

    def _write(self) -> None:
        """The writer thread: each round commits every call waiting, until closed."""
        open_ = True
        while open_:
            batch = [self._calls.get()]
            while not self._calls.empty():
                batch.append(self._calls.get())
            open_ = None not in batch
            calls = [call for call in batch if call is not None and not call.abandoned]
            while calls:
                calls = self._transaction(calls)
            for call in batch:
                if call is not None:
                    call.finish()
        self._db.close()

    def _transaction(self, batch: list[_Call[Any]]) -> list[_Call[Any]]:
        """Run ``batch`` in one transaction; the calls to run again in a new one (when a
        call's error, such as a full disk, rolled the whole transaction back)."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            for index, call in enumerate(batch):
                db.execute("SAVEPOINT call")
                try:
                    call.value, call.error = call.work(db), None
                except Exception as exc:
                    call.error = exc
                    if not db.in_transaction:  # SQLite ended the transaction
                        return batch[:index] + batch[index + 1 :]
                    db.execute("ROLLBACK TO call")
                db.execute("RELEASE call")
            db.execute("COMMIT")
        except BaseException as exc:
            # A failed COMMIT (disk full, I/O error) may leave the transaction
            # open, holding the write lock: always end it. Nothing was committed.
            if db.in_transaction:
                db.execute("ROLLBACK")
            for call in batch:
                call.value, call.error = None, exc
        return []

    def add_column(self, table: str, column: str, statement: str) -> None:
        """Run ``statement`` (an ``ALTER TABLE``) if ``table`` lacks ``column``: a file
        written by an older release gets what this one adds."""
        columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            try:
                self._db.execute(statement)
            except sqlite3.OperationalError as exc:  # another process added it just now
                if "duplicate column" not in str(exc):
                    raise

    async def aclose(self) -> None:
        """Commit what is waiting, then close the file."""
        with self._starting:
            writer, self._writer = self._writer, None
            if writer is None:
                self._db.close()
                return
        self._calls.put(None)
        await anyio.to_thread.run_sync(writer.join)


class SQLiteStore:
    """A :class:`~chatbridge.store.base.Store` in one SQLite file.

    Calls run in a worker thread, each in its own savepoint of a transaction
    (:class:`SQLiteFile`), so every operation is atomic for all tasks of this process.
    Every :data:`SWEEP_EVERY`-th ``first_seen`` deletes a bounded batch of expired dedup
    marks and counters; until then an expired mark counts as absent.
    """

    def __init__(self, path: str | Path) -> None:
        self._file = SQLiteFile(path, _SCHEMA)
        self._run = self._file.run
        self._until_sweep = 0

    @staticmethod
    def _read_state(db: sqlite3.Connection, identity: Identity) -> ContactState:
        row = db.execute(
            "SELECT state FROM contact_state WHERE channel = ? AND address = ?",
            (identity.channel, identity.address),
        ).fetchone()
        return ContactState.model_validate_json(row[0]) if row else DEFAULT_STATE

    async def contact_state(self, identity: Identity) -> ContactState:
        return await self._run(lambda db: self._read_state(db, identity))

    async def update_contact_state(self, identity: Identity, **changes: Any) -> ContactState:
        return await self.change_contact_state(identity, lambda _: changes)

    async def change_contact_state(self, identity: Identity, change: Change) -> ContactState:
        def update(db: sqlite3.Connection) -> ContactState:
            current = self._read_state(db, identity)
            if not (changes := change(current)):
                return current
            state = merged(current, dict(changes))
            db.execute(
                "INSERT INTO contact_state VALUES (?, ?, ?) ON CONFLICT (channel, address) "
                "DO UPDATE SET state = excluded.state",
                (identity.channel, identity.address, state.model_dump_json()),
            )
            return state

        return await self._run(update)

    async def first_seen(self, key: str, now: datetime, ttl: timedelta) -> bool:
        def mark(db: sqlite3.Connection) -> bool:
            row = db.execute("SELECT expires_at FROM seen WHERE key = ?", (key,)).fetchone()
            if row and row[0] > now.timestamp():
                return False
            db.execute("INSERT OR REPLACE INTO seen VALUES (?, ?)", (key, (now + ttl).timestamp()))
            self._until_sweep -= 1
            if self._until_sweep <= 0:
                self._until_sweep = SWEEP_EVERY
                sweep_expired(db, "seen", now.timestamp())
                sweep_expired(db, "counters", now.timestamp())
            return True

        return await self._run(mark)

    async def forget(self, key: str) -> None:
        def drop(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM seen WHERE key = ?", (key,))

        await self._run(drop)

    async def consume(
        self, key: str, amount: int, limit: int | None, expires_at: datetime | None = None
    ) -> bool:
        expiry = expires_at.timestamp() if expires_at else None

        def add(db: sqlite3.Connection) -> bool:
            row = db.execute("SELECT value FROM counters WHERE key = ?", (key,)).fetchone()
            total = (row[0] if row else 0) + amount
            if limit is not None and total > limit:
                return False
            db.execute(
                "INSERT INTO counters VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "value = excluded.value, expires_at = COALESCE(excluded.expires_at, expires_at)",
                (key, total, expiry),
            )
            return True

        return await self._run(add)

    async def counter(self, key: str) -> int:
        def read(db: sqlite3.Connection) -> int:
            row = db.execute("SELECT value FROM counters WHERE key = ?", (key,)).fetchone()
            return int(row[0]) if row else 0

        return await self._run(read)

    async def aclose(self) -> None:
        await self._file.aclose()
