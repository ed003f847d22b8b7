"""An in-process outbox: for tests and single-process tools (gone with the process).

It keeps the records as objects: no encoding, no decoding."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from chatbridge.clock import from_unix
from chatbridge.errors import ReplayError
from chatbridge.server.outbox.records import Record
from chatbridge.server.outbox.types import DEFAULT_LEASE, DeadLetter, Incoming, Mark, OutboxItem
from chatbridge.store.expiry import ExpiringKeys


@dataclass
class _Entry:
    record: Record | bytes
    due_at: float
    attempts: int = 0
    error: str = ""
    dead: bool = False
    taken: bool = False  # given to a worker that has not settled it

    def item(self, item_id: str) -> OutboxItem:
        return OutboxItem(item_id, self.record, self.attempts)


class MemoryOutbox:
    """An :class:`~chatbridge.server.outbox.Outbox` in dictionaries (atomic: no awaits)."""

    def __init__(self, lease: timedelta = DEFAULT_LEASE) -> None:
        self._entries: dict[str, _Entry] = {}
        self._marks = ExpiringKeys()
        self._ids = itertools.count(1)
        self.lease = lease

    async def accept(
        self, incoming: Sequence[Incoming], now: datetime, once: Sequence[Mark] = ()
    ) -> list[bool]:
        at = now.timestamp()
        marked = [m.key for m in once if self._marks.mark(m.key, at, m.expires_at.timestamp())]
        if len(marked) < len(once):
            for key in marked:
                self._marks.discard(key)
            raise ReplayError()
        fresh = []
        for item in incoming:
            new = self._marks.mark(item.mark.key, at, item.mark.expires_at.timestamp())
            if new:
                self._entries[str(next(self._ids))] = _Entry(item.record, at)
            fresh.append(new)
        return fresh

    async def due(self, now: datetime, limit: int) -> list[OutboxItem]:
        at = now.timestamp()
        taken: list[OutboxItem] = []
        for item_id, entry in self._entries.items():
            if len(taken) == limit:
                break
            if not entry.dead and entry.due_at <= at:
                entry.attempts += entry.taken  # its last taker died: that was an attempt
                entry.due_at, entry.taken = at + self.lease.total_seconds(), True
                taken.append(entry.item(item_id))
        return taken

    async def ack(self, *item_ids: str) -> None:
        for item_id in item_ids:
            self._entries.pop(item_id, None)

    async def release(self, *item_ids: str) -> None:
        for item_id in item_ids:
            if (entry := self._entries.get(item_id)) is not None:
                entry.due_at, entry.taken = 0.0, False

    async def retry(self, item_id: str, at: datetime, error: str) -> None:
        entry = self._entries[item_id]
        entry.attempts, entry.due_at, entry.error = entry.attempts + 1, at.timestamp(), error
        entry.taken = False

    async def dead(self, item_id: str, error: str) -> None:
        entry = self._entries[item_id]
        entry.attempts, entry.dead, entry.error = entry.attempts + 1, True, error

    async def dead_letters(self) -> list[DeadLetter]:
        return [
            DeadLetter(entry.item(item_id), entry.error)
            for item_id, entry in self._entries.items()
            if entry.dead
        ]

    async def requeue(self, item_id: str, now: datetime) -> None:
        entry = self._entries[item_id]
        entry.attempts, entry.dead, entry.due_at, entry.taken = 0, False, now.timestamp(), False

    async def pending(self) -> tuple[int, datetime | None]:
        waiting = [entry.due_at for entry in self._entries.values() if not entry.dead]
        return len(waiting), from_unix(min(waiting)) if waiting else None

    async def aclose(self) -> None:
        return None
