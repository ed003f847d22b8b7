"""The values the outbox backends take and give."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

#: How long a worker holds a record it took before another take may see it again.
DEFAULT_LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class Mark:
    """A dedup or one-time key, remembered until ``expires_at``."""

    key: str
    expires_at: datetime


@dataclass(frozen=True)
class Incoming:
    """A record to queue unless its ``mark`` is already set (a redelivery)."""

    mark: Mark
    payload: bytes


@dataclass(frozen=True)
class OutboxItem:
    """A queued record; ``attempts`` counts the failed ones so far."""

    id: str
    payload: bytes
    attempts: int


@dataclass(frozen=True)
class DeadLetter:
    item: OutboxItem
    error: str
