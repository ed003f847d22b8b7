"""An in-memory set of keys with expiry times, expired a few at a time (amortized O(1)).

A dict holds each key's current expiry; ``(expiry, key)`` entries order them: in a FIFO
queue while expiries arrive in order (a fixed TTL and a clock that moves forward, the
common case: O(1) per key), in a heap for those that arrive out of order. Every ``mark``
drops at most :data:`SWEEP` expired entries, so no call ever scans the whole set. An
entry whose key was re-marked or discarded since is stale: popping it does nothing.
When stale entries outnumber live keys the entries are rebuilt, once per O(n) changes.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable

SWEEP = 4
"""Heap entries a call may pop: more than it pushes, so expired keys never pile up."""


class ExpiringKeys:
    """Keys with expiry times; expired keys are dropped a few at a time as new ones arrive.

    A key is expired at ``now`` when its expiry is ``<= now``. ``on_expire`` is called
    with each key the sweep drops (not with discarded ones).
    """

    def __init__(self, on_expire: Callable[[str], object] | None = None) -> None:
        self._expiry: dict[str, float] = {}
        self._queue: deque[tuple[float, str]] = deque()  # expiries in order
        self._heap: list[tuple[float, str]] = []  # the others
        self._on_expire = on_expire

    def mark(self, key: str, now: float, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at`` and return True if it is absent or expired
        at ``now``; return False, changing nothing, if it is present and unexpired."""
        self.expire(now)
        current = self._expiry.get(key)
        if current is not None and current > now:
            return False
        self.set(key, expires_at)
        return True

    def set(self, key: str, expires_at: float) -> None:
        """Record ``key`` until ``expires_at``, replacing any earlier expiry."""
        self._expiry[key] = expires_at
        queue, heap = self._queue, self._heap
        if not queue or queue[-1][0] <= expires_at:
            queue.append((expires_at, key))
        else:
            heapq.heappush(heap, (expires_at, key))
        if len(queue) + len(heap) > 2 * len(self._expiry) + 64:
            self._queue = deque(sorted((at, k) for k, at in self._expiry.items()))
            self._heap = []

    def expire(self, now: float, limit: int = SWEEP) -> int:
        """Drop keys expired at ``now``, popping at most ``limit`` entries; returns how
        many keys were dropped."""
        dropped = 0
        queue, heap = self._queue, self._heap
        for _ in range(limit):
            if heap and heap[0][0] <= now and (not queue or heap[0] <= queue[0]):
                at, key = heapq.heappop(heap)
            elif queue and queue[0][0] <= now:
                at, key = queue.popleft()
            else:
                break
            if self._expiry.get(key) == at:
                del self._expiry[key]
                dropped += 1
                if self._on_expire is not None:
                    self._on_expire(key)
        return dropped

    def discard(self, key: str) -> None:
        """Forget ``key`` if recorded."""
        self._expiry.pop(key, None)

    def expires_at(self, key: str) -> float | None:
        """The recorded expiry of ``key`` (it may have passed but not been swept yet)."""
        return self._expiry.get(key)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is recorded (expired keys count until the sweep drops them)."""
        return key in self._expiry

    def __len__(self) -> int:
        return len(self._expiry)
