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
        self._counters: dict[str, int] = {}

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
        return True

    async def consume(self, key: str, amount: int, limit: int | None) -> bool:
        total = self._counters.get(key, 0) + amount
        if limit is not None and total > limit:
            return False
        self._counters[key] = total
        return True

    async def counter(self, key: str) -> int:
        return self._counters.get(key, 0)

    async def aclose(self) -> None:
        return None
