"""A Redis store for many workers sharing state (redis-py asyncio).

Every operation is atomic across processes: contact-state merges are optimistic
transactions (WATCH/MULTI), dedup marks are ``SET NX PX``, counters are one Lua script
that checks the limit and adds in a single step, so concurrent workers can never
overspend a quota or a rate limit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

from chatbridge.models import Identity
from chatbridge.store.base import ContactState, merged

_CONSUME = """
local value = tonumber(redis.call('GET', KEYS[1]) or '0') + tonumber(ARGV[1])
if ARGV[2] ~= '' and value > tonumber(ARGV[2]) then
  return 0
end
redis.call('SET', KEYS[1], value, 'KEEPTTL')
if ARGV[3] ~= '' then
  redis.call('EXPIREAT', KEYS[1], ARGV[3])
end
return 1
"""


class RedisStore:
    """A :class:`~chatbridge.store.base.Store` in Redis, under ``prefix``."""

    def __init__(self, client: Redis, prefix: str = "chatbridge:") -> None:
        self._redis = client
        self._prefix = prefix
        self._consume = client.register_script(_CONSUME)

    @classmethod
    def from_url(cls, url: str, prefix: str = "chatbridge:") -> RedisStore:
        """A store on the Redis server at ``url`` (``redis://host:port/db``)."""
        return cls(Redis.from_url(url), prefix)

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    def _contact_key(self, identity: Identity) -> str:
        return self._key("contact", f"{identity.channel}:{identity.address}")

    async def contact_state(self, identity: Identity) -> ContactState:
        raw = await self._redis.get(self._contact_key(identity))
        return ContactState.model_validate_json(raw) if raw else ContactState()

    async def update_contact_state(self, identity: Identity, **changes: Any) -> ContactState:
        key = self._contact_key(identity)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    state = merged(
                        ContactState.model_validate_json(raw) if raw else ContactState(), changes
                    )
                    pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py
                    pipe.set(key, state.model_dump_json())
                    await pipe.execute()
                    return state
                except WatchError:
                    continue

    async def first_seen(self, key: str, now: datetime, ttl: timedelta) -> bool:
        milliseconds = max(1, int(ttl.total_seconds() * 1000))
        return bool(await self._redis.set(self._key("seen", key), 1, nx=True, px=milliseconds))

    async def forget(self, key: str) -> None:
        await self._redis.delete(self._key("seen", key))

    async def consume(
        self, key: str, amount: int, limit: int | None, expires_at: datetime | None = None
    ) -> bool:
        args = [
            amount,
            "" if limit is None else limit,
            int(expires_at.timestamp()) if expires_at else "",
        ]
        return bool(await self._consume(keys=[self._key("counter", key)], args=args))

    async def counter(self, key: str) -> int:
        raw = await self._redis.get(self._key("counter", key))
        return int(raw) if raw else 0

    async def aclose(self) -> None:
        await self._redis.aclose()
