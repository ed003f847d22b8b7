"""An outbox on a Redis stream, shared by every process and host that serves the webhooks.

Records are entries of one stream read through one consumer group, so each is given to
one worker (``XREADGROUP``); a worker acks an entry by removing it (``XACK`` +
``XDEL``), so the stream holds only what is not handled yet. An entry a worker took and
did not settle within ``lease`` (the worker died) is claimed by the next take of any
worker (``XAUTOCLAIM``), and that delivery counts as an attempt; a released one is made
claimable the same way at once, its attempts unchanged. A retried entry waits
in a sorted set until it is due, then goes back on the stream; a dead letter moves to a
second stream with its reason.

Each step is one Lua script, atomic across processes: :meth:`RedisOutbox.accept` sets the
dedup marks (``SET NX PX``) and appends the new records in one script, and refuses the
whole request with :class:`~chatbridge.errors.OutboxFullError` (503: the provider sends it
again) when the stream holds ``max_length`` records, so its length is bounded without
dropping any record.

An acknowledged event is as durable as the server makes its writes: run Redis with
``appendonly yes`` and ``appendfsync always`` for the outbox's guarantee to survive a
Redis crash (``everysec`` may lose the last second). Lease times are measured by the
Redis server's clock; due times of retries by the ``now`` the caller passes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from chatbridge.clock import from_unix
from chatbridge.errors import OutboxFullError, ReplayError
from chatbridge.server.outbox.types import DEFAULT_LEASE, DeadLetter, Incoming, Mark, OutboxItem
from chatbridge.store.redis import connect

#: The records the stream may hold (handled ones are removed) before intake refuses.
DEFAULT_MAX_LENGTH = 1_000_000

_GROUP = "chatbridge"

# KEYS: stream, then the once marks, then the records' marks. ARGV: this call's token,
# the stream's maximum length, number of once marks, their TTLs (ms), then TTL (ms) and
# payload per record. A mark holding this call's token was set by this same call, whose
# reply was lost and which the client sent again: it counts as set now, and is not
# queued twice.
_ACCEPT = """
local token, n_once = ARGV[1], tonumber(ARGV[3])
if redis.call('XLEN', KEYS[1]) + #KEYS - 1 - n_once > tonumber(ARGV[2]) then
  return -2
end
local marked = {}
for i = 1, n_once do
  local held = redis.call('SET', KEYS[1 + i], token, 'NX', 'GET', 'PX', ARGV[3 + i])
  if held and held ~= token then
    for _, key in ipairs(marked) do redis.call('DEL', key) end
    return -1
  end
  marked[#marked + 1] = KEYS[1 + i]
end
local fresh, arg, this_run = {}, 4 + n_once, {}
for i = 2 + n_once, #KEYS do
  local held = redis.call('SET', KEYS[i], token, 'NX', 'GET', 'PX', ARGV[arg])
  if not held then
    redis.call('XADD', KEYS[1], '*', 'p', ARGV[arg + 1], 'a', 0)
  end
  local new = (not held or held == token) and not this_run[KEYS[i]]
  this_run[KEYS[i]] = true
  fresh[#fresh + 1] = new and 1 or 0
  arg = arg + 2
end
return fresh
"""

# The entry ``id`` of the stream: its payload and the attempts it had, a delivery that
# never settled (its worker died) counting as one; and its removal. Shared by the
# take, retry and dead-letter scripts. Every script's KEYS are: stream, delayed (sorted
# set), delayed payloads, delayed attempts, dead stream; its ARGV[1] is the group.
_ENTRY = """
local function entry(id)
  local found = redis.call('XRANGE', KEYS[1], id, id)[1]
  if not found then return nil end
  local payload, attempts = nil, 0
  for i = 1, #found[2], 2 do
    if found[2][i] == 'p' then payload = found[2][i + 1]
    elseif found[2][i] == 'a' then attempts = tonumber(found[2][i + 1]) end
  end
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)[1]
  if pending then attempts = attempts + pending[4] - 1 end
  return payload, attempts
end
local function remove(id)
  redis.call('XACK', KEYS[1], ARGV[1], id)
  redis.call('XDEL', KEYS[1], id)
end
"""

# ARGV: group, consumer, now, limit, lease (ms), claim cursor. Returns the next cursor,
# then id, payload, attempts per entry taken.
_DUE = (
    _ENTRY
    + """
local now, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)) do
  local payload = redis.call('HGET', KEYS[3], id)
  if payload then
    redis.call('XADD', KEYS[1], '*', 'p', payload, 'a', redis.call('HGET', KEYS[4], id) or 0)
  end
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
end
local ids = {}
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[5], ARGV[6],
                           'COUNT', limit)
for _, found in ipairs(claimed[2]) do
  if found then ids[#ids + 1] = found[1] end
end
if #ids < limit then
  local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', limit - #ids,
                          'STREAMS', KEYS[1], '>')
  if read then
    for _, found in ipairs(read[1][2]) do ids[#ids + 1] = found[1] end
  end
end
local taken = {claimed[1]}
for _, id in ipairs(ids) do
  local payload, attempts = entry(id)
  if payload then
    taken[#taken + 1] = id
    taken[#taken + 1] = payload
    taken[#taken + 1] = attempts
  end
end
return taken
"""
)

# ARGV: group, due time, then the ids. Counts an attempt; the entries wait until due.
_RETRY = (
    _ENTRY
    + """
for i = 3, #ARGV do
  local payload, attempts = entry(ARGV[i])
  if payload then
    remove(ARGV[i])
    redis.call('HSET', KEYS[3], ARGV[i], payload)
    redis.call('HSET', KEYS[4], ARGV[i], attempts + 1)
    redis.call('ZADD', KEYS[2], ARGV[2], ARGV[i])
  end
end
"""
)

# ARGV: group, consumer, lease (ms), then the ids: left pending but idle for a lease, so
# the next take of any worker claims them, in their order; their delivery count is set
# back by one, since that claim counts one again (attempts unchanged).
_RELEASE = """
for i = 4, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)[1]
  if pending then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3],
               'RETRYCOUNT', pending[4] - 1, 'JUSTID')
  end
end
"""

# ARGV: group, id, reason: the entry moves to the dead stream, an attempt counted.
_DEAD = (
    _ENTRY
    + """
local payload, attempts = entry(ARGV[2])
if payload then
  remove(ARGV[2])
  redis.call('XADD', KEYS[5], '*', 'p', payload, 'a', attempts + 1, 'e', ARGV[3])
end
"""
)

# ARGV: group, dead entry id: back on the stream, attempts reset.
_REQUEUE = """
local found = redis.call('XRANGE', KEYS[5], ARGV[2], ARGV[2])[1]
if found then
  for i = 1, #found[2], 2 do
    if found[2][i] == 'p' then redis.call('XADD', KEYS[1], '*', 'p', found[2][i + 1], 'a', 0) end
  end
  redis.call('XDEL', KEYS[5], ARGV[2])
end
"""

# ARGV: group, idle (ms): forget the consumers (of processes gone) idle that long that
# hold no entry.
_PRUNE = """
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local fields = {}
  for i = 1, #consumer, 2 do fields[consumer[i]] = consumer[i + 1] end
  if fields['pending'] == 0 and fields['idle'] > tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], fields['name'])
  end
end
"""

#: Takes between two prunings of the consumers that left no entry behind.
_PRUNE_EVERY = 1000
_PRUNE_IDLE = timedelta(days=1)

# ARGV: group, consumer: forget this consumer if it holds no entry.
_LEAVE = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
"""


class RedisOutbox:
    """An :class:`~chatbridge.server.outbox.Outbox` on a Redis stream, under ``prefix`` +
    ``outbox:``. Each instance is one consumer of the stream's group."""

    def __init__(
        self,
        client: Redis,
        prefix: str = "chatbridge:",
        lease: timedelta = DEFAULT_LEASE,
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> None:
        self._redis = client
        base = f"{prefix}outbox:"
        self._mark_prefix = f"{base}mark:"
        self._keys = [f"{base}{name}" for name in ("stream", "delayed", "delayed:p")]
        self._keys += [f"{base}delayed:a", f"{base}dead"]
        self._stream, self._delayed, _, _, self._dead = self._keys
        self.lease = lease
        self.max_length = max_length
        self._consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"
        self._cursor = "0-0"
        self._group_ready = False
        scripts = (_ACCEPT, _DUE, _RETRY, _RELEASE, _DEAD, _REQUEUE, _LEAVE, _PRUNE)
        (
            self._accept,
            self._due,
            self._retry,
            self._release,
            self._dead_script,
            self._requeue,
            self._leave,
            self._prune,
        ) = (client.register_script(script) for script in scripts)
        self._takes = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        prefix: str = "chatbridge:",
        lease: timedelta = DEFAULT_LEASE,
        max_length: int = DEFAULT_MAX_LENGTH,
    ) -> RedisOutbox:
        """An outbox on the Redis server at ``url`` (``redis://host:port/db``)."""
        return cls(connect(url), prefix, lease, max_length)

    async def _call(self, script: Any, *args: object) -> Any:
        """Run ``script`` on the stream's keys with the group first in ARGV, creating
        the group (and the stream) the first time, or again if Redis lost it."""
        for _ in range(2):
            if not self._group_ready:
                try:
                    await self._redis.xgroup_create(self._stream, _GROUP, id="0", mkstream=True)
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
                self._group_ready = True
            try:
                return await script(keys=self._keys, args=[_GROUP, *args])
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._group_ready = False
        raise ResponseError("the consumer group could not be created")

    @property
    def _lease_ms(self) -> int:
        return int(self.lease.total_seconds() * 1000)

    async def accept(
        self, incoming: Sequence[Incoming], now: datetime, once: Sequence[Mark] = ()
    ) -> list[bool]:
        keys = [self._stream] + [self._mark_prefix + m.key for m in once]
        keys += [self._mark_prefix + item.mark.key for item in incoming]
        args: list[str | bytes | int] = [uuid4().hex, self.max_length]
        args += [len(once), *(_ttl_ms(m, now) for m in once)]
        for item in incoming:
            args += [_ttl_ms(item.mark, now), item.payload]
        result = await self._accept(keys=keys, args=args)
        if result == -1:
            raise ReplayError()
        if result == -2:
            raise OutboxFullError(
                f"the outbox holds its limit of {self.max_length} records; try again later"
            )
        return [bool(flag) for flag in result]

    async def due(self, now: datetime, limit: int) -> list[OutboxItem]:
        flat = await self._call(
            self._due, self._consumer, repr(now.timestamp()), limit, self._lease_ms, self._cursor
        )
        self._cursor = _text(flat[0])
        self._takes += 1
        if self._takes % _PRUNE_EVERY == 0:
            await self._call(self._prune, int(_PRUNE_IDLE.total_seconds() * 1000))
        return [
            OutboxItem(_text(flat[i]), bytes(flat[i + 1]), int(flat[i + 2]))
            for i in range(1, len(flat), 3)
        ]

    async def ack(self, *item_ids: str) -> None:
        if item_ids:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xack(self._stream, _GROUP, *item_ids)
                pipe.xdel(self._stream, *item_ids)
                await pipe.execute()

    async def release(self, *item_ids: str) -> None:
        if item_ids:
            await self._call(self._release, self._consumer, self._lease_ms, *item_ids)
            self._cursor = "0-0"  # this worker's next take finds them first

    async def retry(self, item_id: str, at: datetime, error: str) -> None:
        await self._call(self._retry, repr(at.timestamp()), item_id)

    async def dead(self, item_id: str, error: str) -> None:
        await self._call(self._dead_script, item_id, error)

    async def dead_letters(self) -> list[DeadLetter]:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await self._redis.xrange(self._dead)  # type: ignore[assignment]
        return [
            DeadLetter(OutboxItem(_text(i), fields[b"p"], int(fields[b"a"])), _text(fields[b"e"]))
            for i, fields in entries
        ]

    async def requeue(self, item_id: str, now: datetime) -> None:
        await self._call(self._requeue, item_id)

    async def pending(self) -> tuple[int, datetime | None]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xlen(self._stream)
            pipe.zcard(self._delayed)
            pipe.xrange(self._stream, count=1)
            pipe.zrange(self._delayed, 0, 0, withscores=True)
            length, delayed, first, next_retry = await pipe.execute()
        times = [int(_text(first[0][0]).partition("-")[0]) / 1000] if first else []
        times += [next_retry[0][1]] if next_retry else []
        return int(length) + int(delayed), from_unix(min(times)) if times else None

    async def aclose(self) -> None:
        """Leave the consumer group (unless this consumer still holds entries: they are
        claimed after the lease), then close the connection."""
        try:
            if self._group_ready:
                await self._call(self._leave, self._consumer)
        finally:
            await self._redis.aclose()


def _ttl_ms(mark: Mark, now: datetime) -> int:
    return max(1, int((mark.expires_at - now).total_seconds() * 1000))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
