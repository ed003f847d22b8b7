"""The values the outbox backends take and give."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from chatbridge.server.outbox import records

#: How long a worker holds a record it took before another take may see it again.
DEFAULT_LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class Mark:
    """A dedup or one-time key, remembered until ``expires_at``."""

    key: str
    expires_at: datetime


@dataclass(frozen=True)
class Incoming:
    """A record to queue unless its ``mark`` is already set (a redelivery).

    ``record`` is the event's record, or its encoding. Backends that keep objects (the
    memory outbox) queue a record as it is; the others store ``payload``, its encoding,
    made once on first use."""

    mark: Mark
    record: records.Record | bytes

    @cached_property
    def payload(self) -> bytes:
        return _encoded(self.record)


@dataclass(frozen=True)
class OutboxItem:
    """A queued record (as queued: an object or its encoding); ``attempts`` counts the
    failed ones so far."""

    id: str
    record: records.Record | bytes
    attempts: int

    @cached_property
    def payload(self) -> bytes:
        return _encoded(self.record)


def _encoded(record: records.Record | bytes) -> bytes:
    return record if isinstance(record, bytes) else records.encode(*record)


@dataclass(frozen=True)
class DeadLetter:
    item: OutboxItem
    error: str
