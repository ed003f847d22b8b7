"""Injectable clocks: every time-dependent rule asks a clock, so tests can move time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


#: Where a FakeClock starts unless told otherwise. Channel kits sign time-bound webhooks
#: at this instant, since the conformance suite runs channels on a default FakeClock.
FAKE_EPOCH = datetime(2037, 1, 1, tzinfo=UTC)


class FakeClock:
    """A clock that only moves when told to (from :data:`FAKE_EPOCH` by default)."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or FAKE_EPOCH
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``."""
        self._now += delta

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (aware)."""
        if when.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = when


def from_unix(seconds: float | str) -> datetime:
    """An aware UTC datetime from unix seconds (providers often send them as strings)."""
    return datetime.fromtimestamp(float(seconds), UTC)
