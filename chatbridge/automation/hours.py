"""Business hours: when the support team is there, in its own time zone, with holidays.

Hours are local wall-clock times of :attr:`BusinessHours.timezone`. An interval whose
end is not after its start crosses midnight ("22:00-02:00"; "00:00-00:00" is the whole
day) and belongs to the day it starts on: a holiday closes the intervals that start on
it. On the days clocks change, a local time is read as ``datetime(..., tzinfo=zone)``
reads it (PEP 495, fold 0): a time that does not exist (spring forward, 02:30 in
Europe/Berlin) is taken with the offset before the change, so it falls an hour later;
a time that occurs twice (fall back) means its first occurrence. An interval that
ends up empty that way is closed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chatbridge.errors import ConfigurationError

#: Weekday names as keys of the TOML table, in ``date.weekday()`` order.
DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SHORT_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_INTERVAL = re.compile(r"\s*(\d\d):(\d\d)\s*-\s*(\d\d):(\d\d)\s*")

#: A local opening interval: (start, end); an end not after the start is the next day.
Interval = tuple[time, time]


@dataclass(frozen=True)
class BusinessHours:
    """When the team is open.

    - ``timezone``: an IANA name (``zoneinfo``), where the times below are read.
    - ``week``: weekday (``date.weekday()``: 0 is Monday) -> its intervals; a missing
      day is closed.
    - ``holidays``: local dates closed all day.
    - ``exceptions``: local dates with their own intervals instead of the week's
      (an empty list closes the day); they win over ``holidays``.
    """

    timezone: str
    week: Mapping[int, Sequence[Interval]]
    holidays: frozenset[date] = frozenset()
    exceptions: Mapping[date, Sequence[Interval]] = field(default_factory=dict)
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", _zone(self.timezone, "timezone"))
        if not set(self.week) <= set(range(7)):
            raise ConfigurationError(f"business hours: weekdays are 0-6, got {sorted(self.week)}")
        for intervals in [*self.week.values(), *self.exceptions.values()]:
            for start, end in intervals:
                if start.tzinfo or end.tzinfo:
                    raise ConfigurationError(
                        "business hours: interval times are local to the timezone, "
                        f"without a tzinfo of their own ({start}-{end})"
                    )

    @classmethod
    def from_config(cls, table: Mapping[str, Any]) -> BusinessHours:
        """From the ``[automation.hours]`` TOML table (see docs/automation.md)."""
        where = "automation.hours"
        unknown = set(table) - {"timezone", "weekdays", "holidays", "exceptions", *DAY_NAMES}
        if unknown:
            raise ConfigurationError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        if "timezone" not in table:
            raise ConfigurationError(f'{where}: missing key "timezone" (an IANA name)')
        _zone(table["timezone"], f"{where}.timezone")
        week: dict[int, list[Interval]] = {}
        if "weekdays" in table:  # monday..friday, unless a day is named on its own
            week = dict.fromkeys(range(5), _intervals(table["weekdays"], f"{where}.weekdays"))
        for day, name in enumerate(DAY_NAMES):
            if name in table:
                week[day] = _intervals(table[name], f"{where}.{name}")
        holidays = table.get("holidays", [])
        if not isinstance(holidays, list):
            raise ConfigurationError(f"{where}.holidays: a list of dates, got {holidays!r}")
        exceptions = table.get("exceptions", {})
        if not isinstance(exceptions, Mapping):
            raise ConfigurationError(f"{where}.exceptions: a table of date = [intervals]")
        return cls(
            timezone=table["timezone"],
            week=week,
            holidays=frozenset(
                _date(day, f"{where}.holidays[{i}]") for i, day in enumerate(holidays)
            ),
            exceptions={
                _date(day, f"{where}.exceptions"): _intervals(spans, f"{where}.exceptions.{day}")
                for day, spans in exceptions.items()
            },
        )

    def is_open(self, at: datetime) -> bool:
        """Whether the team is open at ``at`` (an aware datetime)."""
        moment = _utc(at)
        return any(start <= moment < end for start, end in self._spans(moment, days=2))

    def next_open(self, at: datetime) -> datetime | None:
        """The first moment from ``at`` on when the team is open (``at`` itself when it
        is), in the business time zone; None if it never opens again."""
        moment = _utc(at)
        for start, end in self._merged(moment):
            if moment < end:
                return max(start, moment).astimezone(self._zone)
        return None

    def next_close(self, at: datetime) -> datetime | None:
        """The first moment from ``at`` on when the team is closed (``at`` itself when it
        is), in the business time zone; None if it is open for good."""
        moment = _utc(at)
        horizon = self._horizon(moment)
        for start, end in self._merged(moment):
            if moment < start:
                break
            if moment < end:
                return None if end >= horizon else end.astimezone(self._zone)
        return at.astimezone(self._zone)

    def describe(self, at: datetime) -> str:
        """``at`` in the business time zone, with why its day is special, if it is:
        "Thu 2026-12-31 10:00 (holiday)"."""
        local = _utc(at).astimezone(self._zone)
        day = local.date()
        note = " (special hours)" if day in self.exceptions else ""
        note = " (holiday)" if not note and day in self.holidays else note
        return f"{_SHORT_NAMES[day.weekday()]} {local:%Y-%m-%d %H:%M}{note}"

    def __str__(self) -> str:
        """The week in short: "Mon-Fri 09:00-18:00; Sat 10:00-14:00 Asia/Tokyo"."""
        groups: list[tuple[list[int], str]] = []
        for day in range(7):
            hours = ", ".join(f"{start:%H:%M}-{_end(end)}" for start, end in self._day(day))
            if groups and groups[-1][1] == hours and groups[-1][0][-1] == day - 1:
                groups[-1][0].append(day)
            else:
                groups.append(([day], hours))
        week = "; ".join(
            f"{_SHORT_NAMES[days[0]]}{'-' + _SHORT_NAMES[days[-1]] if len(days) > 1 else ''} "
            f"{hours}"
            for days, hours in groups
            if hours
        )
        special = [
            _count(len(self.holidays), "holiday"),
            _count(len(self.exceptions), "day with special hours", "days with special hours"),
        ]
        return " ".join([week or "closed every day", self.timezone]) + "".join(
            f", {text}" for text in special if text
        )

    def _day(self, weekday: int) -> list[Interval]:
        return sorted(self.week.get(weekday, ()))

    def _intervals_on(self, day: date) -> Sequence[Interval]:
        if day in self.exceptions:
            return self.exceptions[day]
        if day in self.holidays:
            return ()
        return self.week.get(day.weekday(), ())

    def _spans(self, moment: datetime, days: int) -> Iterator[tuple[datetime, datetime]]:
        """The open spans (UTC) of the intervals starting on ``days`` local days, from
        the day before ``moment``'s (whose intervals may cross midnight into it)."""
        first = moment.astimezone(self._zone).date() - timedelta(days=1)
        for offset in range(days):
            day = first + timedelta(days=offset)
            spans = []
            for start, end in self._intervals_on(day):
                opens = datetime.combine(day, start, self._zone).astimezone(UTC)
                closes_on = day + timedelta(days=1) if end <= start else day
                closes = datetime.combine(closes_on, end, self._zone).astimezone(UTC)
                if opens < closes:
                    spans.append((opens, closes))
            yield from sorted(spans)  # by UTC: a local time in a DST gap moves

    def _horizon(self, moment: datetime) -> datetime:
        """Where the scan for opening or closing stops: past ``moment`` and every holiday
        and exception, then a whole week more of the weekly pattern alone (the day after
        the last of them may still hold an interval crossing midnight from it). Open or
        closed for that whole week, the team is open or closed for good."""
        last = max([moment.astimezone(self._zone).date(), *self.holidays, *self.exceptions])
        return datetime.combine(last + timedelta(days=9), time(), self._zone).astimezone(UTC)

    def _merged(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The open spans from the day before ``moment``'s up to the horizon, overlapping
        and touching ones merged, in order."""
        horizon = self._horizon(moment)
        days = (horizon - moment).days + 3
        current: tuple[datetime, datetime] | None = None
        for start, end in self._spans(moment, days):
            if current is not None and start <= current[1]:
                current = (current[0], max(current[1], end))
                continue
            if current is not None:
                yield current
            current = (start, end)
        if current is not None:
            yield current


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"business hours need an aware datetime, got the naive {at}")
    return at.astimezone(UTC)


def _zone(name: Any, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as error:
        raise ConfigurationError(f"{where}: unknown time zone {name!r}") from error


def _end(end: time) -> str:
    """An interval's end as written: midnight is "24:00"."""
    return "24:00" if end == time() else f"{end:%H:%M}"


def _count(count: int, one: str, many: str = "") -> str:
    """ "2 holidays"; "" for none."""
    return f"{count} {one if count == 1 else many or one + 's'}" if count else ""


def _date(value: Any, where: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError) as error:
        raise ConfigurationError(f"{where}: {value!r} is not a date YYYY-MM-DD") from error


def _intervals(value: Any, where: str) -> list[Interval]:
    if not isinstance(value, list):
        raise ConfigurationError(f'{where}: a list of "HH:MM-HH:MM", got {value!r}')
    intervals = []
    for i, text in enumerate(value):
        found = _INTERVAL.fullmatch(text) if isinstance(text, str) else None
        if found is None:
            raise ConfigurationError(f'{where}[{i}]: {text!r} is not "HH:MM-HH:MM"')
        hours = [int(part) for part in found.groups()]
        if hours[2:] == [24, 0]:
            hours[2] = 0  # "24:00": midnight at the end of the day
        try:
            intervals.append((time(hours[0], hours[1]), time(hours[2], hours[3])))
        except ValueError as error:
            raise ConfigurationError(f"{where}[{i}]: {text!r}: {error}") from error
    return intervals
