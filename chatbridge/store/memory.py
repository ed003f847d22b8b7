"""An in-process store: fast, and forgets everything when the process ends."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chatbridge.models import Identity
from chatbridge.store.base import DEFAULT_STATE, Change, ContactState, merged
from chatbridge.store.expiry import ExpiringKeys


class MemoryStore:
    """A :class:`~chatbridge.store.base.Store` kept in dictionaries.

    Safe for concurrent tasks of one event loop (no await between read and write).
    Expired dedup marks and counters are dropped a few at a time by each ``first_seen``
    (at its ``now``), so no call costs more as the store grows. Contacts are keyed by
    ``(channel, address)``, as in the other stores (hashing a tuple, not a model).
    """

    def __init__(self) -> None:
        self._contacts: dict[tuple[str, str], ContactState] = {}
        self._seen = ExpiringKeys()
        self._counters: dict[str, int] = {}
        self._counter_expiry = ExpiringKeys(lambda key: self._counters.pop(key, None))

    async def contact_state(self, identity: Identity) -> ContactState:
        return self._contacts.get((identity.channel, identity.address), DEFAULT_STATE)

    async def update_contact_state(self, identity: Identity, **changes: Any) -> ContactState:
        return await self.change_contact_state(identity, lambda _: changes)

    async def change_contact_state(self, identity: Identity, change: Change) -> ContactState:
        key = (identity.channel, identity.address)
        current = self._contacts.get(key, DEFAULT_STATE)
        if not (changes := change(current)):
            return current
        self._contacts[key] = state = merged(current, dict(changes))
        return state

    async def first_seen(self, key: str, now: datetime, ttl: timedelta) -> bool:
        at = now.timestamp()
        self._counter_expiry.expire(at)
        return self._seen.mark(key, at, at + ttl.total_seconds())

    async def forget(self, key: str) -> None:
        self._seen.discard(key)

    async def consume(
        self, key: str, amount: int, limit: int | None, expires_at: datetime | None = None
    ) -> bool:
        total = self._counters.get(key, 0) + amount
        if limit is not None and total > limit:
            return False
        self._counters[key] = total
        if expires_at is not None:
            self._counter_expiry.set(key, expires_at.timestamp())
        return True

    async def counter(self, key: str) -> int:
        return self._counters.get(key, 0)

    async def aclose(self) -> None:
        return None
