"""The history in a terminal (rich tables) and as CSV: ``chatbridge history`` and
``chatbridge report``."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from chatbridge.conversations.metrics import ReportRow
from chatbridge.conversations.model import Customer, Entry, EntryKind, Page
from chatbridge.models import Direction

if TYPE_CHECKING:
    from rich.table import Table


def timeline_table(customer: Customer, page: Page) -> Table:
    """One row per entry: when, channel, who, what, and how far a send got."""
    from rich.table import Table

    names = ", ".join(str(identity) for identity in customer.identities)
    title = f"{customer.name or customer.id} ({names})"
    table = Table(title=title, caption=f"earlier: --before {page.before}" if page.before else None)
    for column in ("when (UTC)", "channel", "", "text", "status"):
        table.add_column(column, overflow="fold")
    for entry in page.entries:
        table.add_row(
            f"{entry.at:%Y-%m-%d %H:%M:%S}",
            entry.channel or "",
            _who(entry),
            entry.text or _event_name(entry),
            _status(entry),
        )
    return table


def _who(entry: Entry) -> str:
    if entry.kind is EntryKind.NOTE:
        return f"note ({entry.note.author})" if entry.note and entry.note.author else "note"
    if entry.kind is EntryKind.EVENT:
        return "event"
    return "<-" if entry.direction is Direction.INBOUND else "->"


def _event_name(entry: Entry) -> str:
    if entry.event is None:
        return ""
    return str(getattr(entry.event, "name", None) or entry.event.type)


def _status(entry: Entry) -> str:
    if entry.outcome is None:
        return ""
    status = entry.delivery.state.value if entry.delivery else entry.outcome.value
    return f"{status}: {entry.reason}" if entry.reason else status


#: ReportRow's fields as short column titles, and how their values print.
_REPORT_COLUMNS = {
    "period": "period",
    "channel": "channel",
    "conversations": "convs",
    "first_response_median": "1st reply",
    "resolved": "resolved",
    "resolution_median": "resolution",
    "messages_per_conversation": "msgs/conv",
    "sent": "sent",
    "window_misses": "window misses",
    "failed": "failed",
    "delivery_rate": "delivered",
    "read_rate": "read",
}
_DURATIONS = ("first_response_median", "resolution_median")
_RATES = ("delivery_rate", "read_rate")


def report_table(rows: Sequence[ReportRow]) -> Table:
    """One row per period and channel; times are medians, rates percentages."""
    from rich import box
    from rich.table import Table

    table = Table(title="chatbridge report", box=box.SIMPLE_HEAD, padding=(0, 1))
    for name, title in _REPORT_COLUMNS.items():
        right = name not in ("period", "channel")
        table.add_column(title, justify="right" if right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*(_cell(name, getattr(row, name)) for name in _REPORT_COLUMNS))
    return table


def _cell(name: str, value: object) -> str:
    if value is None:
        return "-"
    if name in _DURATIONS:
        return _duration(float(value))  # type: ignore[arg-type]
    if name in _RATES:
        return f"{float(value):.0%}"  # type: ignore[arg-type]
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def write_csv(rows: Sequence[ReportRow], path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(ReportRow.columns())
        writer.writerows(row.values() for row in rows)
