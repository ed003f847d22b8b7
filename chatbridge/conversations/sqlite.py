"""The history in one SQLite file (the embedded default), on the store's
:class:`~chatbridge.store.sqlite.SQLiteFile`: one writer thread, group commit. Reads run
on connections of their own in worker threads (WAL lets them read while it writes), so
a search or a report never holds up recording."""

from __future__ import annotations

import queue
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

from chatbridge.conversations.ops import Op, Query, Row, run_sync
from chatbridge.conversations.schema import SQLITE
from chatbridge.errors import HistoryError
from chatbridge.store.sqlite import SQLiteFile

T = TypeVar("T")


class SQLiteDatabase:
    """A history database in the SQLite file at ``path`` (":memory:": in this process
    only, read and written by the one writer thread)."""

    dialect = SQLITE

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        try:
            self._file = SQLiteFile(path, SQLITE.schema, "busy_timeout=10000")
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot open the history at {path}: {exc}") from exc
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()

    async def run(self, op: Callable[[], Op[T]]) -> T:
        try:
            return await self._file.run(lambda db: _drive(op, db))
        except sqlite3.Error as exc:
            raise HistoryError(f"the history database failed: {exc}") from exc

    async def read(self, op: Callable[[], Op[T]]) -> T:
        if self._path == ":memory:":  # no other connection sees this database
            return await self.run(op)
        try:
            return await anyio.to_thread.run_sync(self._read, op)
        except sqlite3.Error as exc:
            raise HistoryError(f"the history database failed: {exc}") from exc

    def _read(self, op: Callable[[], Op[T]]) -> T:
        try:
            db = self._readers.get_nowait()
        except queue.Empty:
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA query_only = ON")
        try:
            db.execute("BEGIN")  # one snapshot for all the operation's queries
            try:
                return _drive(op, db)
            finally:
                db.execute("ROLLBACK")
        finally:
            self._readers.put(db)

    async def aclose(self) -> None:
        await self._file.aclose()
        while not self._readers.empty():
            self._readers.get_nowait().close()


def _drive(op: Callable[[], Op[T]], db: sqlite3.Connection) -> T:
    def execute(query: Query) -> list[Row]:
        return db.execute(*query).fetchall()

    return run_sync(op, execute)
