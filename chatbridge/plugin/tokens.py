"""A cached, refresh-once access token shared by concurrent callers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import anyio

from chatbridge.clock import Clock

#: A coroutine that fetches a new token and says how long it lives.
Fetch = Callable[[], Awaitable[tuple[str, timedelta]]]


class AccessTokenCache:
    """Holds one access token, fetched on first use and refreshed ``margin`` before it
    expires. Concurrent callers wait for a single fetch instead of each starting one."""

    def __init__(self, fetch: Fetch, clock: Clock, margin: timedelta = timedelta(minutes=5)):
        self._fetch = fetch
        self._clock = clock
        self._margin = margin
        self._lock = anyio.Lock()
        self._token: str | None = None
        self._previous: str | None = None
        self._expires_at: datetime | None = None
        self.fetches = 0

    def known(self) -> list[str]:
        """The tokens requests may carry now (the current one and the one before it):
        what an error must not show."""
        return [token for token in (self._token, self._previous) if token]

    async def get(self) -> str:
        """A valid token, fetching one if the cached one is missing or about to expire."""
        async with self._lock:
            if self._token is None or self._stale():
                await self._refresh()
            assert self._token is not None
            return self._token

    async def invalidate(self, rejected: str) -> str:
        """The provider rejected ``rejected``: fetch a new token unless another caller
        already replaced it, and return the current one."""
        async with self._lock:
            if self._token is None or self._token == rejected:
                await self._refresh()
            assert self._token is not None
            return self._token

    def _stale(self) -> bool:
        return self._expires_at is None or self._clock.now() >= self._expires_at - self._margin

    async def _refresh(self) -> None:
        token, lifetime = await self._fetch()
        self.fetches += 1
        self._previous, self._token = self._token, token
        self._expires_at = self._clock.now() + lifetime
