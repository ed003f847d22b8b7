"""A durable queue of received events awaiting the application's handler.

The webhook app writes every new event here before answering the provider, so a
handler that fails (or a process that dies) loses nothing: due items are retried with
back-off and, after the last attempt, kept as dead letters for inspection.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import anyio.to_thread


@dataclass(frozen=True)
class OutboxItem:
    id: str
    payload: str
    attempts: int


class Outbox(Protocol):
    """Where received events wait for the handler."""

    async def put(self, payload: str, now: datetime) -> None: ...

    async def due(self, now: datetime, limit: int) -> list[OutboxItem]:
        """Items whose next attempt is due, oldest first (they stay until ack/dead)."""
        ...

    async def ack(self, item_id: str) -> None: ...

    async def retry(self, item_id: str, at: datetime, error: str) -> None: ...

    async def dead(self, item_id: str, error: str) -> None: ...

    async def dead_letters(self) -> list[tuple[OutboxItem, str]]: ...


@dataclass
class _Entry:
    payload: str
    due_at: float
    attempts: int = 0
    error: str | None = None
    dead: bool = False


class MemoryOutbox:
    """An in-process outbox (for tests and single-process tools)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._ids = itertools.count(1)

    async def put(self, payload: str, now: datetime) -> None:
        self._entries[str(next(self._ids))] = _Entry(payload, now.timestamp())

    async def due(self, now: datetime, limit: int) -> list[OutboxItem]:
        ready = [
            OutboxItem(item_id, entry.payload, entry.attempts)
            for item_id, entry in self._entries.items()
            if not entry.dead and entry.due_at <= now.timestamp()
        ]
        return ready[:limit]

    async def ack(self, item_id: str) -> None:
        self._entries.pop(item_id, None)

    async def retry(self, item_id: str, at: datetime, error: str) -> None:
        entry = self._entries[item_id]
        entry.attempts, entry.due_at, entry.error = entry.attempts + 1, at.timestamp(), error

    async def dead(self, item_id: str, error: str) -> None:
        entry = self._entries[item_id]
        entry.attempts, entry.dead, entry.error = entry.attempts + 1, True, error

    async def dead_letters(self) -> list[tuple[OutboxItem, str]]:
        return [
            (OutboxItem(item_id, entry.payload, entry.attempts), entry.error or "")
            for item_id, entry in self._entries.items()
            if entry.dead
        ]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL, due_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, error TEXT, dead INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (dead, due_at);
"""


class SQLiteOutbox:
    """An outbox in a SQLite file: survives restarts."""

    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    async def _run(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        def work() -> list[tuple[object, ...]]:
            with self._lock:
                return self._db.execute(sql, args).fetchall()

        return await anyio.to_thread.run_sync(work)

    async def put(self, payload: str, now: datetime) -> None:
        await self._run(
            "INSERT INTO outbox (payload, due_at) VALUES (?, ?)", (payload, now.timestamp())
        )

    async def due(self, now: datetime, limit: int) -> list[OutboxItem]:
        rows = await self._run(
            "SELECT id, payload, attempts FROM outbox WHERE dead = 0 AND due_at <= ? "
            "ORDER BY id LIMIT ?",
            (now.timestamp(), limit),
        )
        return [OutboxItem(str(row[0]), str(row[1]), int(str(row[2]))) for row in rows]

    async def ack(self, item_id: str) -> None:
        await self._run("DELETE FROM outbox WHERE id = ?", (int(item_id),))

    async def retry(self, item_id: str, at: datetime, error: str) -> None:
        await self._run(
            "UPDATE outbox SET attempts = attempts + 1, due_at = ?, error = ? WHERE id = ?",
            (at.timestamp(), error, int(item_id)),
        )

    async def dead(self, item_id: str, error: str) -> None:
        await self._run(
            "UPDATE outbox SET attempts = attempts + 1, dead = 1, error = ? WHERE id = ?",
            (error, int(item_id)),
        )

    async def dead_letters(self) -> list[tuple[OutboxItem, str]]:
        rows = await self._run("SELECT id, payload, attempts, error FROM outbox WHERE dead = 1")
        return [(OutboxItem(str(r[0]), str(r[1]), int(str(r[2]))), str(r[3] or "")) for r in rows]

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._db.close)
