"""An in-process store: fast, and forgets everything when the process ends."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chatbridge.models import Identity
from chatbridge.store.base import ContactState, merged


class MemoryStore:
    """A :class:`~chatbridge.store.base.Store` kept in dictionaries.

    Safe for concurrent tasks of one event loop (no await between read and write).
    """

    def __init__(self) -> None:
        self._contacts: dict[Identity, ContactState] = {}
        self._seen: dict[str, datetime] = {}
        self._counters: dict[str, tuple[int, datetime | None]] = {}

    async def contact_state(self, identity: Identity) -> ContactState:
        return self._contacts.get(identity, ContactState())

    async def update_contact_state(self, identity: Identity, **changes: Any) -> ContactState:
        state = merged(self._contacts.get(identity, ContactState()), changes)
        self._contacts[identity] = state
        return state

    async def first_seen(self, key: str, now: datetime, ttl: timedelta) -> bool:
        expires = self._seen.get(key)
        if expires is not None and expires > now:
            return False
        self._seen[key] = now + ttl
        if len(self._seen) % 1024 == 0:
            self._forget(now)
        return True

    def _forget(self, now: datetime) -> None:
        """Drop expired dedup marks and counters (run now and then, it is O(n))."""
        self._seen = {k: t for k, t in self._seen.items() if t > now}
        self._counters = {k: v for k, v in self._counters.items() if v[1] is None or v[1] > now}

    async def forget(self, key: str) -> None:
        self._seen.pop(key, None)

    async def consume(
        self, key: str, amount: int, limit: int | None, expires_at: datetime | None = None
    ) -> bool:
        value, old_expiry = self._counters.get(key, (0, None))
        total = value + amount
        if limit is not None and total > limit:
            return False
        self._counters[key] = (total, expires_at or old_expiry)
        return True

    async def counter(self, key: str) -> int:
        return self._counters.get(key, (0, None))[0]

    async def aclose(self) -> None:
        return None
