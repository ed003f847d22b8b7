from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatbridge.automation.hours import BusinessHours
from chatbridge.errors import ConfigurationError

TOKYO = ZoneInfo("Asia/Tokyo")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

OFFICE = BusinessHours.from_config(
    {
        "timezone": "Asia/Tokyo",
        "weekdays": ["09:00-18:00"],
        "saturday": ["10:00-14:00"],
        "holidays": ["2026-12-31", date(2027, 1, 1)],  # a string or a TOML date
    }
)


def tokyo(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TOKYO)


def test_open_and_closed() -> None:
    assert OFFICE.is_open(tokyo(2026, 5, 8, 9))  # Friday, opening time included
    assert OFFICE.is_open(tokyo(2026, 5, 8, 17, 59))
    assert not OFFICE.is_open(tokyo(2026, 5, 8, 18))  # closing time excluded
    assert not OFFICE.is_open(tokyo(2026, 5, 8, 8, 59))
    assert OFFICE.is_open(tokyo(2026, 5, 9, 13))  # Saturday
    assert not OFFICE.is_open(tokyo(2026, 5, 10, 12))  # Sunday
    assert OFFICE.is_open(datetime(2026, 5, 8, 0, tzinfo=UTC))  # 09:00 in Tokyo


def test_holidays_are_closed() -> None:
    assert not OFFICE.is_open(tokyo(2026, 12, 31, 12))
    assert not OFFICE.is_open(tokyo(2027, 1, 1, 12))
    assert OFFICE.is_open(tokyo(2026, 12, 30, 12))


def test_exceptions_replace_the_day() -> None:
    hours = BusinessHours.from_config(
        {
            "timezone": "Asia/Tokyo",
            "weekdays": ["09:00-18:00"],
            "holidays": ["2026-12-28"],
            "exceptions": {
                "2026-12-28": ["10:00-12:00"],
                "2026-12-29": [],
                "2026-12-27": ["10:00-11:00"],
            },
        }
    )
    assert hours.is_open(tokyo(2026, 12, 28, 11))  # an exception wins over a holiday
    assert not hours.is_open(tokyo(2026, 12, 28, 13))
    assert not hours.is_open(tokyo(2026, 12, 29, 11))
    assert hours.is_open(tokyo(2026, 12, 27, 10, 30))  # a Sunday
    assert hours.describe(tokyo(2026, 12, 28, 11)) == "Mon 2026-12-28 11:00 (special hours)"


def test_intervals_crossing_midnight() -> None:
    night = BusinessHours.from_config(
        {"timezone": "Asia/Tokyo", "friday": ["22:00-02:00"], "holidays": ["2026-05-09"]}
    )
    assert not night.is_open(tokyo(2026, 5, 8, 21, 59))
    assert night.is_open(tokyo(2026, 5, 8, 23))
    assert night.is_open(tokyo(2026, 5, 9, 1, 59))  # Saturday is a holiday: Friday's hours
    assert not night.is_open(tokyo(2026, 5, 9, 2))
    assert night.next_close(tokyo(2026, 5, 8, 23)) == tokyo(2026, 5, 9, 2)
    assert night.next_open(tokyo(2026, 5, 9, 3)) == tokyo(2026, 5, 15, 22)
    assert str(night) == "Fri 22:00-02:00 Asia/Tokyo, 1 holiday"


def test_next_open_across_a_weekend_and_a_holiday() -> None:
    assert OFFICE.next_open(tokyo(2026, 5, 8, 12)) == tokyo(2026, 5, 8, 12)  # open: now
    assert OFFICE.next_open(tokyo(2026, 5, 8, 19)) == tokyo(2026, 5, 9, 10)
    assert OFFICE.next_open(tokyo(2026, 5, 9, 15)) == tokyo(2026, 5, 11, 9)
    # Wednesday evening: Thursday 31st and Friday 1st are holidays, then the Saturday.
    assert OFFICE.next_open(tokyo(2026, 12, 30, 19)) == tokyo(2027, 1, 2, 10)
    assert OFFICE.next_open(datetime(2026, 5, 8, 12, tzinfo=UTC)).tzinfo is TOKYO  # type: ignore[union-attr]


def test_next_close() -> None:
    assert OFFICE.next_close(tokyo(2026, 5, 8, 12)) == tokyo(2026, 5, 8, 18)
    assert OFFICE.next_close(tokyo(2026, 5, 8, 19)) == tokyo(2026, 5, 8, 19)  # closed: now
    split = BusinessHours.from_config(
        {"timezone": "UTC", "monday": ["09:00-12:00", "12:00-13:00", "11:00-15:00"]}
    )
    monday = datetime(2026, 5, 11, 10, tzinfo=UTC)
    assert split.next_close(monday) == datetime(2026, 5, 11, 15, tzinfo=UTC)  # merged


def test_never_and_always() -> None:
    at = tokyo(2026, 5, 8, 12)
    never = BusinessHours("Asia/Tokyo", {})
    assert never.next_open(at) is None
    assert never.next_close(at) == at
    assert str(never) == "closed every day Asia/Tokyo"
    always = BusinessHours.from_config(
        {"timezone": "UTC", **{day: ["00:00-24:00"] for day in ("weekdays", "saturday", "sunday")}}
    )
    assert always.next_close(at) is None
    assert always.next_open(at) == at
    assert str(always) == "Mon-Sun 00:00-24:00 UTC"
    closing = BusinessHours(
        "UTC", {d: [(time(), time())] for d in range(7)}, frozenset({date(2026, 6, 1)})
    )
    assert closing.next_close(at) == datetime(2026, 6, 1, tzinfo=UTC)


def test_str() -> None:
    assert str(OFFICE) == "Mon-Fri 09:00-18:00; Sat 10:00-14:00 Asia/Tokyo, 2 holidays"
    lunch = BusinessHours.from_config(
        {
            "timezone": "Europe/Berlin",
            "weekdays": ["09:00-12:00", "13:00-17:00"],
            "wednesday": ["09:00-12:00"],
        }
    )
    assert str(lunch) == (
        "Mon-Tue 09:00-12:00, 13:00-17:00; Wed 09:00-12:00; Thu-Fri 09:00-12:00, 13:00-17:00 "
        "Europe/Berlin"
    )


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 5, 8, 12)
    for method in (OFFICE.is_open, OFFICE.next_open, OFFICE.next_close, OFFICE.describe):
        with pytest.raises(ValueError, match="aware"):
            method(naive)


# -- daylight saving time -----------------------------------------------------------------

NIGHTS = BusinessHours.from_config(
    {
        "timezone": "Europe/Berlin",
        "weekdays": ["01:00-04:00"],
        "sunday": ["02:30-05:00", "22:00-02:30"],
    }
)


def test_spring_forward() -> None:
    # 2026-03-29, a Sunday: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
    # Sunday's 02:30 is read with the offset before the change (CET): 01:30 UTC, 03:30 CEST.
    assert not NIGHTS.is_open(datetime(2026, 3, 29, 1, 29, tzinfo=UTC))
    assert NIGHTS.is_open(datetime(2026, 3, 29, 1, 30, tzinfo=UTC))
    assert NIGHTS.next_open(datetime(2026, 3, 29, 0, 30, tzinfo=UTC)) == datetime(
        2026, 3, 29, 3, 30, tzinfo=BERLIN
    )
    # Monday's 01:00-04:00 after the change lasts three hours of CEST.
    assert NIGHTS.next_close(datetime(2026, 3, 30, 0, tzinfo=UTC)) == datetime(
        2026, 3, 30, 4, tzinfo=BERLIN
    )


def test_fall_back() -> None:
    # 2026-10-25, a Sunday: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
    # (An ambiguous local time never equals a time of another zone: compare in UTC.)
    opens = NIGHTS.next_open(datetime(2026, 10, 25, 0, tzinfo=UTC))
    assert opens is not None and opens.fold == 0
    assert opens.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert NIGHTS.is_open(datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN))  # the second
    # Saturday night's 22:00-02:30 (a Sunday interval starts on Sunday: none the night before).
    assert not NIGHTS.is_open(datetime(2026, 10, 24, 23, tzinfo=BERLIN))
    # Monday 01:00 CET after Sunday 22:00-02:30: Sunday's interval and Monday's merge.
    assert NIGHTS.next_close(datetime(2026, 10, 25, 23, tzinfo=BERLIN)) == datetime(
        2026, 10, 26, 4, tzinfo=BERLIN
    )


@given(
    zone=st.sampled_from([BERLIN, NEW_YORK]),
    at=st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC)),
    hours=st.sampled_from(
        [
            {"weekdays": ["09:00-18:00"]},
            {"sunday": ["01:30-03:30"], "saturday": ["23:00-02:30"]},
            {"weekdays": ["02:00-02:30", "02:15-03:00"], "holidays": ["2026-03-30", "2026-11-02"]},
            {"sunday": ["02:00-02:00"]},
        ]
    ),
)
def test_next_open_and_close_agree_with_is_open(
    zone: ZoneInfo, at: datetime, hours: dict[str, Any]
) -> None:
    business = BusinessHours.from_config({"timezone": str(zone), **hours})
    opens = business.next_open(at)  # local: arithmetic on it would be wall-clock arithmetic
    opens = opens and opens.astimezone(UTC)
    assert opens is not None and opens >= at and business.is_open(opens)
    if opens > at + timedelta(minutes=1):
        assert not business.is_open(opens - timedelta(minutes=1))
        assert not business.is_open(at)
    closes = business.next_close(at)
    closes = closes and closes.astimezone(UTC)
    assert closes is not None and closes >= at and not business.is_open(closes)
    if closes > at:
        assert business.is_open(at) and business.is_open(closes - timedelta(minutes=1))


# -- configuration ------------------------------------------------------------------------


def test_weekdays_shorthand_and_a_day_of_its_own() -> None:
    hours = BusinessHours.from_config(
        {"timezone": "UTC", "weekdays": ["09:00-18:00"], "friday": ["09:00-15:00"]}
    )
    assert hours.week[0] == [(time(9), time(18))]
    assert hours.week[4] == [(time(9), time(15))]
    assert 5 not in hours.week


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, 'automation.hours: missing key "timezone"'),
        (
            {"timezone": "Mars/Olympus"},
            "automation.hours.timezone: unknown time zone 'Mars/Olympus'",
        ),
        ({"timezone": 9}, "automation.hours.timezone: unknown time zone 9"),
        (
            {"timezone": "UTC", "mondays": ["09:00-18:00"]},
            "automation.hours: unknown key(s) mondays",
        ),
        (
            {"timezone": "UTC", "monday": "09:00-18:00"},
            'automation.hours.monday: a list of "HH:MM-HH:MM"',
        ),
        (
            {"timezone": "UTC", "monday": ["9-18"]},
            "automation.hours.monday[0]: '9-18' is not \"HH:MM-HH:MM\"",
        ),
        (
            {"timezone": "UTC", "weekdays": ["09:00-25:00"]},
            "automation.hours.weekdays[0]: '09:00-25:00': hour",
        ),
        (
            {"timezone": "UTC", "holidays": "2026-12-31"},
            "automation.hours.holidays: a list of dates",
        ),
        (
            {"timezone": "UTC", "holidays": ["31/12/2026"]},
            "automation.hours.holidays[0]: '31/12/2026' is not a date",
        ),
        ({"timezone": "UTC", "exceptions": ["2026-12-31"]}, "automation.hours.exceptions: a table"),
        (
            {"timezone": "UTC", "exceptions": {"soon": []}},
            "automation.hours.exceptions: 'soon' is not a date",
        ),
        (
            {"timezone": "UTC", "exceptions": {"2026-12-31": ["x"]}},
            "automation.hours.exceptions.2026-12-31[0]",
        ),
    ],
)
def test_config_errors(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        BusinessHours.from_config(table)
    assert message in str(raised.value)


def test_python_api_errors() -> None:
    with pytest.raises(ConfigurationError, match="unknown time zone"):
        BusinessHours("Nowhere/City", {})
    with pytest.raises(ConfigurationError, match="weekdays are 0-6"):
        BusinessHours("UTC", {7: [(time(9), time(17))]})
    with pytest.raises(ConfigurationError, match="local to the timezone"):
        BusinessHours("UTC", {0: [(time(9, tzinfo=UTC), time(17))]})
