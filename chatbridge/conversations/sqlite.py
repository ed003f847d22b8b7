"""The history in one SQLite file (the embedded default), on the store's
:class:`~chatbridge.store.sqlite.SQLiteFile`: one writer thread, group commit."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from chatbridge.conversations.ops import Op, Query, Row, run_sync
from chatbridge.conversations.schema import SQLITE
from chatbridge.errors import HistoryError
from chatbridge.store.sqlite import SQLiteFile

T = TypeVar("T")


class SQLiteDatabase:
    """A history database in the SQLite file at ``path`` (":memory:" for none)."""

    dialect = SQLITE

    def __init__(self, path: str | Path) -> None:
        try:
            self._file = SQLiteFile(path, SQLITE.schema, "busy_timeout=10000")
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot open the history at {path}: {exc}") from exc

    async def run(self, op: Callable[[], Op[T]]) -> T:
        def work(db: sqlite3.Connection) -> T:
            def execute(query: Query) -> list[Row]:
                return db.execute(*query).fetchall()

            return run_sync(op, execute)

        try:
            return await self._file.run(work)
        except sqlite3.Error as exc:
            raise HistoryError(f"the history database failed: {exc}") from exc

    async def aclose(self) -> None:
        await self._file.aclose()
