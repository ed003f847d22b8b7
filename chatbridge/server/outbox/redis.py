"""An outbox in Redis, shared by every process and host that serves the webhooks.

Each step is one Lua script or one MULTI transaction, so it is atomic across
processes: :meth:`RedisOutbox.accept` sets the dedup marks (``SET NX PX``) and queues
the new records in one script. Records wait in a sorted set scored by when they are
due; :meth:`RedisOutbox.due` leases what it takes by moving it ``lease`` ahead, so no
two workers take the same record and a crashed worker's records come back.

An acknowledged event is as durable as the server makes its writes: run Redis with
``appendonly yes`` and ``appendfsync always`` for the outbox's guarantee to survive a
Redis crash (``everysec`` may lose the last second).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import uuid4

from redis.asyncio import Redis

from chatbridge.clock import from_unix
from chatbridge.errors import ReplayError
from chatbridge.server.outbox.types import DEFAULT_LEASE, DeadLetter, Incoming, Mark, OutboxItem
from chatbridge.store.redis import connect

# KEYS: seq, items, due, then the once marks, then the records' marks. ARGV: now, this
# call's token, number of once marks, their TTLs (ms), then TTL (ms) and payload per
# record. A mark holding this call's token was set by this same call, whose reply was
# lost and which the client sent again: it counts as set now, and is not queued twice.
_ACCEPT = """
local now, token, n_once = ARGV[1], ARGV[2], tonumber(ARGV[3])
local marked = {}
for i = 1, n_once do
  local held = redis.call('SET', KEYS[3 + i], token, 'NX', 'GET', 'PX', ARGV[3 + i])
  if held and held ~= token then
    for _, key in ipairs(marked) do redis.call('DEL', key) end
    return -1
  end
  marked[#marked + 1] = KEYS[3 + i]
end
local fresh, arg, this_run = {}, 4 + n_once, {}
for i = 4 + n_once, #KEYS do
  local held = redis.call('SET', KEYS[i], token, 'NX', 'GET', 'PX', ARGV[arg])
  if not held then
    local id = string.format('%016d', redis.call('INCR', KEYS[1]))
    redis.call('HSET', KEYS[2], id, ARGV[arg + 1])
    redis.call('ZADD', KEYS[3], now, id)
  end
  local new = (not held or held == token) and not this_run[KEYS[i]]
  this_run[KEYS[i]] = true
  fresh[#fresh + 1] = new and 1 or 0
  arg = arg + 2
end
return fresh
"""

# KEYS: due, items, attempts. ARGV: now, limit, lease end. Returns id, payload, attempts...
_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local taken = {}
for _, id in ipairs(ids) do
  local payload = redis.call('HGET', KEYS[2], id)
  if payload then
    redis.call('ZADD', KEYS[1], ARGV[3], id)
    taken[#taken + 1] = id
    taken[#taken + 1] = payload
    taken[#taken + 1] = redis.call('HGET', KEYS[3], id) or '0'
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return taken
"""


class RedisOutbox:
    """An :class:`~chatbridge.server.outbox.Outbox` in Redis, under ``prefix`` + ``outbox:``."""

    def __init__(
        self, client: Redis, prefix: str = "chatbridge:", lease: timedelta = DEFAULT_LEASE
    ) -> None:
        self._redis = client
        self._base = f"{prefix}outbox:"
        self._seq, self._items, self._due = (self._base + n for n in ("seq", "items", "due"))
        self._attempts, self._errors, self._dead = (
            self._base + n for n in ("attempts", "errors", "dead")
        )
        self._lease = lease.total_seconds()
        self._accept = client.register_script(_ACCEPT)
        self._take = client.register_script(_DUE)

    @classmethod
    def from_url(
        cls, url: str, prefix: str = "chatbridge:", lease: timedelta = DEFAULT_LEASE
    ) -> RedisOutbox:
        """An outbox on the Redis server at ``url`` (``redis://host:port/db``)."""
        return cls(connect(url), prefix, lease)

    def _mark(self, key: str) -> str:
        return f"{self._base}mark:{key}"

    async def accept(
        self, incoming: Sequence[Incoming], now: datetime, once: Sequence[Mark] = ()
    ) -> list[bool]:
        keys = [self._seq, self._items, self._due]
        keys += [self._mark(m.key) for m in once] + [self._mark(i.mark.key) for i in incoming]
        args: list[str | bytes | int] = [repr(now.timestamp()), uuid4().hex, len(once)]
        args += [_ttl_ms(m, now) for m in once]
        for item in incoming:
            args += [_ttl_ms(item.mark, now), item.payload]
        result = await self._accept(keys=keys, args=args)
        if result == -1:
            raise ReplayError()
        return [bool(flag) for flag in result]

    async def due(self, now: datetime, limit: int) -> list[OutboxItem]:
        leased_until = repr(now.timestamp() + self._lease)
        flat = await self._take(
            keys=[self._due, self._items, self._attempts],
            args=[repr(now.timestamp()), limit, leased_until],
        )
        return [
            OutboxItem(_text(flat[i]), bytes(flat[i + 1]), int(flat[i + 2]))
            for i in range(0, len(flat), 3)
        ]

    async def ack(self, item_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._due, item_id)
            for table in (self._items, self._attempts, self._errors):
                pipe.hdel(table, item_id)
            await pipe.execute()

    async def retry(self, item_id: str, at: datetime, error: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(self._attempts, item_id, 1)
            pipe.hset(self._errors, item_id, error)
            pipe.zadd(self._due, {item_id: at.timestamp()}, xx=True)
            await pipe.execute()

    async def dead(self, item_id: str, error: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(self._attempts, item_id, 1)
            pipe.hset(self._errors, item_id, error)
            pipe.zrem(self._due, item_id)
            pipe.zadd(self._dead, {item_id: 0})
            await pipe.execute()

    async def dead_letters(self) -> list[DeadLetter]:
        ids = [_text(raw) for raw in await self._redis.zrange(self._dead, 0, -1)]
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for table in (self._items, self._attempts, self._errors):
                pipe.hmget(table, ids)
            payloads, attempts, errors = await pipe.execute()
        return [
            DeadLetter(OutboxItem(i, bytes(p or b""), int(a or 0)), _text(e or b""))
            for i, p, a, e in zip(ids, payloads, attempts, errors, strict=True)
        ]

    async def requeue(self, item_id: str, now: datetime) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._dead, item_id)
            pipe.hdel(self._attempts, item_id)
            pipe.zadd(self._due, {item_id: now.timestamp()})
            await pipe.execute()

    async def pending(self) -> tuple[int, datetime | None]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self._due)
            pipe.zrange(self._due, 0, 0, withscores=True)
            count, first = await pipe.execute()
        return int(count), from_unix(first[0][1]) if first else None

    async def aclose(self) -> None:
        await self._redis.aclose()


def _ttl_ms(mark: Mark, now: datetime) -> int:
    return max(1, int((mark.expires_at - now).total_seconds() * 1000))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
