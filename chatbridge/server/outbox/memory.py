"""An in-process outbox: for tests and single-process tools (gone with the process).

It keeps the records as objects: no encoding, no decoding."""

from __future__ import annotations

import heapq
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
    """An :class:`~chatbridge.server.outbox.Outbox` in dictionaries (atomic: no awaits).

    Records wait in a heap by due time and, once due, in a heap by id (the order they
    came in, as in the other backends), so a take costs O(log n) whatever waits; a
    record's outdated heap places are skipped when reached and dropped whenever they
    outnumber the records."""

    def __init__(self, lease: timedelta = DEFAULT_LEASE) -> None:
        self._entries: dict[int, _Entry] = {}
        self._heap: list[tuple[float, int]] = []  # (due_at, id); outdated ones skipped
        self._ready: list[int] = []  # ids found due
        self._marks = ExpiringKeys()
        self._ids = itertools.count(1)
        self.lease = lease

    def _schedule(self, item_id: int, entry: _Entry, due_at: float) -> None:
        entry.due_at = due_at
        if len(self._heap) > 2 * len(self._entries) + 1024:
            self._heap = [(e.due_at, i) for i, e in self._entries.items() if not e.dead]
            heapq.heapify(self._heap)
        heapq.heappush(self._heap, (due_at, item_id))

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
                item_id = next(self._ids)
                self._entries[item_id] = entry = _Entry(item.record, at)
                self._schedule(item_id, entry, at)
            fresh.append(new)
        return fresh

    async def due(self, now: datetime, limit: int) -> list[OutboxItem]:
        at = now.timestamp()
        while self._heap and self._heap[0][0] <= at:
            due_at, item_id = heapq.heappop(self._heap)
            entry = self._entries.get(item_id)
            if entry is not None and entry.due_at == due_at:
                heapq.heappush(self._ready, item_id)
        taken: list[OutboxItem] = []
        while self._ready and len(taken) < limit:
            item_id = heapq.heappop(self._ready)
            entry = self._entries.get(item_id)
            if entry is None or entry.dead or entry.due_at > at:
                continue  # settled or moved since
            entry.attempts += entry.taken  # its last taker died: that was an attempt
            entry.taken = True
            self._schedule(item_id, entry, at + self.lease.total_seconds())
            taken.append(entry.item(str(item_id)))
        return taken

    async def ack(self, *item_ids: str) -> None:
        for item_id in item_ids:
            self._entries.pop(int(item_id), None)

    async def release(self, *item_ids: str) -> None:
        for item_id in item_ids:
            if (entry := self._entries.get(int(item_id))) is not None:
                entry.taken = False
                self._schedule(int(item_id), entry, 0.0)

    async def retry(self, item_id: str, at: datetime, error: str) -> None:
        entry = self._entries[int(item_id)]
        entry.attempts, entry.error, entry.taken = entry.attempts + 1, error, False
        self._schedule(int(item_id), entry, at.timestamp())

    async def dead(self, item_id: str, error: str) -> None:
        entry = self._entries[int(item_id)]
        entry.attempts, entry.dead, entry.error = entry.attempts + 1, True, error

    async def dead_letters(self) -> list[DeadLetter]:
        return [
            DeadLetter(entry.item(str(item_id)), entry.error)
            for item_id, entry in self._entries.items()
            if entry.dead
        ]

    async def requeue(self, item_id: str, now: datetime) -> None:
        entry = self._entries[int(item_id)]
        entry.attempts, entry.dead, entry.taken = 0, False, False
        self._schedule(int(item_id), entry, now.timestamp())

    async def pending(self) -> tuple[int, datetime | None]:
        waiting = [entry.due_at for entry in self._entries.values() if not entry.dead]
        return len(waiting), from_unix(min(waiting)) if waiting else None

    async def aclose(self) -> None:
        return None
