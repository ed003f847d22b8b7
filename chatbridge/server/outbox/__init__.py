"""Where received events wait for the application's handler: the outbox.

The webhook app acknowledges a request only after :meth:`Outbox.accept` committed it:
the dedup marks of its events (and its one-time values, such as a Mailgun token) and
the records of the new events are written in **one atomic step** of one backend, so an
acknowledged event is always queued and a crash can never leave a mark without its
record. The worker then takes due records (:meth:`Outbox.due` leases them for
``lease``, so a record a crashed worker held comes back), and acks, retries or
dead-letters each.

Backends: :class:`MemoryOutbox` (one process, tests), :class:`SQLiteOutbox` (one host,
survives restarts) and ``chatbridge.server.outbox.redis.RedisOutbox`` (shared, imported on
demand). Dedup marks expire at O(1) cost per event in each.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from chatbridge.server.outbox.memory import MemoryOutbox
from chatbridge.server.outbox.sqlite import SQLiteOutbox
from chatbridge.server.outbox.types import DEFAULT_LEASE, DeadLetter, Incoming, Mark, OutboxItem


class Outbox(Protocol):
    """A durable queue of received events with their dedup marks."""

    #: How long a record taken by :meth:`due` stays with its taker before another take
    #: may see it again (the taker is presumed dead).
    lease: timedelta

    async def accept(
        self, incoming: Sequence[Incoming], now: datetime, once: Sequence[Mark] = ()
    ) -> list[bool]:
        """In one atomic step: refuse the whole request with
        :class:`~chatbridge.errors.ReplayError` if a ``once`` key is marked (and mark
        them otherwise); mark and queue each incoming record whose key is not marked.
        Returns, per record, whether it was new (False: a duplicate, not queued)."""
        ...

    async def due(self, now: datetime, limit: int) -> list[OutboxItem]:
        """Up to ``limit`` records due now, oldest first, leased to the caller."""
        ...

    async def ack(self, *item_ids: str) -> None:
        """Drop handled records."""
        ...

    async def release(self, *item_ids: str) -> None:
        """Give back taken records that were not tried: due at once, attempts unchanged."""
        ...

    async def retry(self, item_id: str, at: datetime, error: str) -> None:
        """Count a failed attempt; the record is due again at ``at``."""
        ...

    async def dead(self, item_id: str, error: str) -> None:
        """Keep a record that will not be handled as a dead letter, with the reason."""
        ...

    async def dead_letters(self) -> list[DeadLetter]:
        """The dead letters, oldest first, with the reason each was given up on."""
        ...

    async def requeue(self, item_id: str, now: datetime) -> None:
        """Queue a dead letter again (after fixing its cause), attempts reset."""
        ...

    async def pending(self) -> tuple[int, datetime | None]:
        """How many records wait (dead letters apart), and when the earliest is due
        (None: none waits). For metrics, not for every request."""
        ...

    async def aclose(self) -> None: ...


__all__ = [
    "DEFAULT_LEASE",
    "DeadLetter",
    "Incoming",
    "Mark",
    "MemoryOutbox",
    "Outbox",
    "OutboxItem",
    "SQLiteOutbox",
]
