"""A Redis store for many workers sharing state (redis-py asyncio).

Every operation is atomic across processes: contact-state merges are optimistic
transactions (WATCH/MULTI), dedup marks are ``SET NX PX``, counters are one Lua script
that checks the limit and adds in a single step, so concurrent workers can never
overspend a quota or a rate limit.

Clients made by :func:`connect` survive a server restart: a command that fails on a
stale pooled connection reconnects and is sent again, with backoff.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from redis import exceptions
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from chatbridge.models import Identity
from chatbridge.store.base import DEFAULT_STATE, Change, ContactState, merged

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


#: Connections one client keeps to Redis; more concurrent calls wait for a free one.
MAX_CONNECTIONS = 64


def connect(url: str, *, socket_timeout: float | None = 5.0) -> Redis:
    """A client for the Redis server at ``url`` (``redis://host:port/db``) that retries
    a command up to 5 times (10 ms to 1 s apart) on connection errors and timeouts,
    pings a connection idle for 30 s before reusing it, and gives up on a connect after
    5 s and on a reply after ``socket_timeout`` (raise it above any blocking command's
    timeout). At most :data:`MAX_CONNECTIONS` are open: further concurrent calls wait up
    to 10 s for one (redis-py's default pool refuses them at once). Every Redis-backed
    component should connect through this."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=10,
        retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=1.0), 5),
        retry_on_error=[exceptions.ConnectionError, exceptions.TimeoutError],
        health_check_interval=30,
        socket_connect_timeout=5,
        socket_timeout=socket_timeout,
        socket_keepalive=True,
    )
    return Redis.from_pool(pool)


class RedisStore:
    """A :class:`~chatbridge.store.base.Store` in Redis, under ``prefix``."""

    def __init__(self, client: Redis, prefix: str = "chatbridge:") -> None:
        self._redis = client
        self._prefix = prefix
        self._consume = client.register_script(_CONSUME)

    @classmethod
    def from_url(cls, url: str, prefix: str = "chatbridge:") -> RedisStore:
        """A store on the Redis server at ``url`` (``redis://host:port/db``)."""
        return cls(connect(url), prefix)

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    def _contact_key(self, identity: Identity) -> str:
        return self._key("contact", f"{identity.channel}:{identity.address}")

    async def contact_state(self, identity: Identity) -> ContactState:
        raw = await self._redis.get(self._contact_key(identity))
        return ContactState.model_validate_json(raw) if raw else DEFAULT_STATE

    async def update_contact_state(self, identity: Identity, **changes: Any) -> ContactState:
        return await self.change_contact_state(identity, lambda _: changes)

    async def change_contact_state(self, identity: Identity, change: Change) -> ContactState:
        key = self._contact_key(identity)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    current = ContactState.model_validate_json(raw) if raw else DEFAULT_STATE
                    if not (changes := change(current)):
                        return current  # leaving the pipeline unwatches the key
                    state = merged(current, dict(changes))
                    pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py
                    pipe.set(key, state.model_dump_json())
                    await pipe.execute()
                    return state
                except exceptions.WatchError:
                    continue

    async def first_seen(self, key: str, now: datetime, ttl: timedelta) -> bool:
        # SET NX GET with a token of this call: should a retry resend a SET that was
        # applied but whose reply was lost, it finds its own token, not a duplicate.
        token = uuid4().bytes
        milliseconds = max(1, int(ttl.total_seconds() * 1000))
        previous = await self._redis.set(
            self._key("seen", key), token, nx=True, px=milliseconds, get=True
        )
        return previous is None or previous == token

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
