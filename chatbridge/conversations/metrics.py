"""Support metrics computed from the history, per period and channel.

- first response: from the customer opening a conversation to the team's first sent
  reply (conversations the team opened have none);
- resolution: from opening to the latest resolution;
- messages per conversation: received and sent (not refused, failed...), all channels;
- window misses: sends refused because the service window was closed (or never opened);
- delivery and read rates: of the messages sent, those reported delivered (or further)
  and read (or played).

A conversation counts in the period and channel it was opened in, a send in those it
was made in.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from chatbridge.conversations.ops import Row, moment
from chatbridge.policy import RefusalReason
from chatbridge.recorder import SendOutcome

Period = Literal["day", "week", "month"]

_WINDOW_MISSES = frozenset({RefusalReason.WINDOW_CLOSED, RefusalReason.WINDOW_NEVER_OPENED})


@dataclass
class ReportRow:
    """The metrics of one period (its label: 2026-12-02, 2026-W49 or 2026-12) and one
    channel. Times in seconds (None: nothing to measure); rates from 0 to 1."""

    period: str
    channel: str
    conversations: int = 0
    first_response_median: float | None = None
    resolved: int = 0
    resolution_median: float | None = None
    messages_per_conversation: float | None = None
    sent: int = 0
    window_misses: int = 0
    failed: int = 0
    delivery_rate: float | None = None
    read_rate: float | None = None

    @classmethod
    def columns(cls) -> list[str]:
        return [field.name for field in fields(cls)]

    def values(self) -> list[Any]:
        return [getattr(self, name) for name in self.columns()]


def label(at: datetime, period: Period, zone: ZoneInfo) -> str:
    """The period ``at`` falls in, in ``zone``."""
    local = at.astimezone(zone)
    if period == "day":
        return local.date().isoformat()
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{local:%Y-%m}"


class _Tally:
    def __init__(self) -> None:
        self.opened = 0
        self.first_responses: list[float] = []
        self.resolutions: list[float] = []
        self.messages = 0
        self.sent = self.refused_window = self.failed = self.delivered = self.read = 0

    def row(self, period: str, channel: str) -> ReportRow:
        return ReportRow(
            period=period,
            channel=channel,
            conversations=self.opened,
            first_response_median=_median(self.first_responses),
            resolved=len(self.resolutions),
            resolution_median=_median(self.resolutions),
            messages_per_conversation=self.messages / self.opened if self.opened else None,
            sent=self.sent,
            window_misses=self.refused_window,
            failed=self.failed,
            delivery_rate=self.delivered / self.sent if self.sent else None,
            read_rate=self.read / self.sent if self.sent else None,
        )


def report(
    conversations: Sequence[Row], sends: Sequence[Row], period: Period, timezone: str
) -> list[ReportRow]:
    """The rows of ``ops.report_rows``, tallied per period and channel."""
    zone = ZoneInfo(timezone)
    tallies: dict[tuple[str, str], _Tally] = {}

    def tally(at: int, channel: str | None) -> _Tally:
        key = (label(moment(at), period, zone), channel or "-")  # type: ignore[arg-type]
        return tallies.setdefault(key, _Tally())

    for channel, opened, first, resolved, _state, messages in conversations:
        counts = tally(opened, channel)
        counts.opened += 1
        counts.messages += messages
        if first is not None:
            counts.first_responses.append((first - opened) / 1e6)
        if resolved is not None:
            counts.resolutions.append((resolved - opened) / 1e6)
    for channel, at, outcome, reason, delivered, read, played, failed in sends:
        counts = tally(at, channel)
        if outcome == SendOutcome.REFUSED and reason in _WINDOW_MISSES:
            counts.refused_window += 1
        if outcome == SendOutcome.FAILED:
            counts.failed += 1
        if outcome != SendOutcome.SENT:
            continue
        counts.sent += 1
        counts.read += read is not None or played is not None
        counts.delivered += any(t is not None for t in (delivered, read, played))
        counts.failed += failed is not None and delivered is None and read is None
    return [tallies[key].row(*key) for key in sorted(tallies)]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None
