"""An outbox in a SQLite file: survives restarts; several processes of one host may
share it (WAL, and ``BEGIN IMMEDIATE`` around every step). The steps of one process
that overlap are committed together (:class:`~chatbridge.store.sqlite.SQLiteFile`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from chatbridge.clock import from_unix
from chatbridge.errors import ReplayError
from chatbridge.server.outbox.types import DEFAULT_LEASE, DeadLetter, Incoming, Mark, OutboxItem
from chatbridge.store.sqlite import SQLiteFile, sweep_expired

_T = TypeVar("_T")

# ``outbox`` keeps the name and columns of the first release, so its records are read
# as they are (a TEXT payload is a record of version 0, see records.py).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, payload BLOB NOT NULL, due_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, error TEXT, dead INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (dead, due_at);
CREATE TABLE IF NOT EXISTS marks (key TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS marks_expiry ON marks (expires_at);
"""

# ``taken``: the record was given to a worker that has not settled it (acked, retried,
# released); if it is taken again, that worker died and its attempt counts. Added to
# the first release's table.
_TAKEN = "ALTER TABLE outbox ADD COLUMN taken INTEGER NOT NULL DEFAULT 0"

#: Each step deletes up to this many expired marks per mark it sets, through the expiry
#: index: the table keeps pace with expiry and the cost per event does not grow with it.
_SWEEP_PER_MARK = 2


class SQLiteOutbox:
    """An :class:`~chatbridge.server.outbox.Outbox` in one SQLite file.

    Every step is one transaction committed with ``synchronous=FULL``: an accepted
    event is on disk before the provider is answered, even if the machine loses power.
    """

    def __init__(self, path: str | Path, lease: timedelta = DEFAULT_LEASE) -> None:
        self._file = SQLiteFile(path, _SCHEMA, "synchronous=FULL", "busy_timeout=10000")
        self._file.add_column("outbox", "taken", _TAKEN)
        self._run = self._file.run
        self.lease = lease

    async def accept(
        self, incoming: Sequence[Incoming], now: datetime, once: Sequence[Mark] = ()
    ) -> list[bool]:
        at = now.timestamp()

        def write(db: sqlite3.Connection) -> list[bool]:
            if not all(_mark(db, m.key, at, m.expires_at.timestamp()) for m in once):
                raise ReplayError()  # rolls the whole step back
            fresh = []
            for item in incoming:
                new = _mark(db, item.mark.key, at, item.mark.expires_at.timestamp())
                if new:
                    db.execute(
                        "INSERT INTO outbox (payload, due_at) VALUES (?, ?)", (item.payload, at)
                    )
                fresh.append(new)
            sweep_expired(db, "marks", at, _SWEEP_PER_MARK * (len(incoming) + len(once)))
            return fresh

        return await self._run(write)

    async def due(self, now: datetime, limit: int) -> list[OutboxItem]:
        at = now.timestamp()

        def take(db: sqlite3.Connection) -> list[OutboxItem]:
            rows = db.execute(
                # Oldest due first, through the index alone (no sort of the whole backlog).
                "SELECT id, payload, attempts, taken FROM outbox WHERE dead = 0 AND due_at <= ? "
                "ORDER BY due_at, id LIMIT ?",
                (at, limit),
            ).fetchall()
            db.executemany(  # an abandoned take (taken = 1) counts as an attempt
                "UPDATE outbox SET attempts = attempts + taken, due_at = ?, taken = 1 WHERE id = ?",
                [(at + self.lease.total_seconds(), row[0]) for row in rows],
            )
            return [OutboxItem(str(row[0]), _bytes(row[1]), int(row[2] + row[3])) for row in rows]

        return await self._run(take)

    async def ack(self, *item_ids: str) -> None:
        ids = [(int(item_id),) for item_id in item_ids]
        await self._run(lambda db: db.executemany("DELETE FROM outbox WHERE id = ?", ids))

    async def release(self, *item_ids: str) -> None:
        ids = [(int(item_id),) for item_id in item_ids]
        release = "UPDATE outbox SET due_at = 0, taken = 0 WHERE id = ?"
        await self._run(lambda db: db.executemany(release, ids))

    async def retry(self, item_id: str, at: datetime, error: str) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE outbox SET attempts = attempts + 1, due_at = ?, error = ?, taken = 0 "
                "WHERE id = ?",
                (at.timestamp(), error, int(item_id)),
            )
        )

    async def dead(self, item_id: str, error: str) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE outbox SET attempts = attempts + 1, dead = 1, error = ? WHERE id = ?",
                (error, int(item_id)),
            )
        )

    async def dead_letters(self) -> list[DeadLetter]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT id, payload, attempts, error FROM outbox WHERE dead = 1 ORDER BY id"
            ).fetchall()
        )
        return [
            DeadLetter(OutboxItem(str(r[0]), _bytes(r[1]), int(r[2])), str(r[3] or ""))
            for r in rows
        ]

    async def requeue(self, item_id: str, now: datetime) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE outbox SET attempts = 0, dead = 0, due_at = ?, taken = 0 "
                "WHERE id = ? AND dead = 1",
                (now.timestamp(), int(item_id)),
            )
        )

    async def pending(self) -> tuple[int, datetime | None]:
        count, earliest = await self._run(
            lambda db: db.execute(
                "SELECT COUNT(*), MIN(due_at) FROM outbox WHERE dead = 0"
            ).fetchone()
        )
        return int(count), from_unix(earliest) if earliest is not None else None

    async def aclose(self) -> None:
        await self._file.aclose()


def _mark(db: sqlite3.Connection, key: str, now: float, expires_at: float) -> bool:
    """Set mark ``key`` unless it is set and unexpired; whether it was set now."""
    row = db.execute("SELECT expires_at FROM marks WHERE key = ?", (key,)).fetchone()
    if row is not None and row[0] > now:
        return False
    db.execute("INSERT OR REPLACE INTO marks VALUES (?, ?)", (key, expires_at))
    return True


def _bytes(payload: str | bytes) -> bytes:
    """A stored payload as bytes (records of the first release are TEXT)."""
    return payload.encode() if isinstance(payload, str) else payload
