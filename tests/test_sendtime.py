"""The delivery-time rule (famfeeds.plan.sendtime), checked against an oracle of its own.

The oracle never resolves a local time: it walks forward from the release moment one UTC
minute at a time and reads each minute's wall clock with pytz (an implementation of the tz
database apart from zoneinfo, with its own copy of the data), so the rule's lookups of
local times (skipped and repeated hours included) are checked by plain counting."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import pytz  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from famfeeds.plan.sendtime import (
    DeliveryRule,
    InvalidZone,
    Window,
    parse_window,
    subscriber_zone,
)

ZONES = [
    "Pacific/Auckland",
    "Europe/Berlin",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Australia/Lord_Howe",  # a 30-minute daylight-saving shift
    "Asia/Kolkata",
    "America/St_Johns",
    "Europe/Dublin",  # "negative" daylight-saving time in the tz data
    "Pacific/Apia",  # skipped a whole day (2011-12-30)
    "UTC",
]
CHANGES = {
    "Pacific/Auckland": ["2026-04-05T03:00+13:00", "2026-09-27T02:00+12:00"],
    "Europe/Berlin": ["2026-03-29T02:00+01:00", "2026-10-25T03:00+02:00"],
    "America/Los_Angeles": ["2026-03-08T02:00-08:00", "2026-11-01T02:00-07:00"],
    "America/Sao_Paulo": ["2018-11-04T00:00-03:00", "2019-02-17T00:00-02:00"],
    "Australia/Lord_Howe": ["2026-04-05T02:00+11:00", "2026-10-04T02:00+10:30"],
    "Europe/Dublin": ["2026-03-29T01:00+00:00", "2026-10-25T02:00+01:00"],
    "Pacific/Apia": ["2011-12-29T23:59-10:00"],
}
"""Moments near a daylight-saving (or calendar) change in each zone, so examples cluster
around the hours that are skipped or repeated."""
MINUTE = timedelta(minutes=1)


def wall(moment: datetime, zone: str) -> datetime:
    """The zone's wall clock at ``moment``, read by pytz (naive)."""
    return moment.astimezone(pytz.timezone(zone)).replace(tzinfo=None)


def reaches(before: datetime, after: datetime, at: time) -> bool:
    """Whether the wall clock, going from ``before`` to ``after`` (one minute on, or a
    jump), shows ``at`` at ``after`` or jumps over it."""
    if after.time() == at:
        return True
    if after - before <= MINUTE:
        return False
    day = before.date()
    while day <= after.date():  # a jump may skip whole days (Pacific/Apia, 2011)
        if before < datetime.combine(day, at) < after:
            return True
        day += timedelta(days=1)
    return False


def oracle(release: datetime, zone: str, at: time | None, quiet: Window | None) -> datetime:
    """The due moment by counting minutes (the release is on a whole minute)."""
    moment = release
    if at is not None:
        previous = wall(moment - MINUTE, zone)
        while True:
            now = wall(moment, zone)
            if reaches(previous, now, at):
                break
            previous, moment = now, moment + MINUTE
    if quiet is not None:
        while quiet.holds(wall(moment, zone).time()):
            moment += MINUTE
    return moment


@st.composite
def releases(draw: st.DrawFn) -> tuple[datetime, str]:
    zone = draw(st.sampled_from(ZONES))
    if zone in CHANGES and draw(st.booleans()):
        around = datetime.fromisoformat(draw(st.sampled_from(CHANGES[zone])))
        offset = draw(st.integers(min_value=-36 * 60, max_value=36 * 60))
        release = around.astimezone(UTC) + offset * MINUTE
    else:
        minutes = draw(st.integers(min_value=0, max_value=20 * 365 * 24 * 60))
        release = datetime(2012, 1, 1, tzinfo=UTC) + minutes * MINUTE
    return release, zone


clocks = st.builds(time, st.integers(0, 23), st.sampled_from([0, 0, 15, 30, 45, 59]))
windows = st.tuples(clocks, clocks).filter(lambda w: w[0] != w[1]).map(lambda w: Window(*w))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(releases(), st.one_of(st.none(), clocks), st.one_of(st.none(), windows))
def test_the_due_moment_is_the_first_minute_the_wall_clock_allows(
    case: tuple[datetime, str], at: time | None, quiet: Window | None
) -> None:
    release, zone = case
    due = DeliveryRule(at, quiet).due(release, ZoneInfo(zone))
    assert due.tzinfo is not None and due.utcoffset() == timedelta(0)
    assert due >= release
    assert due == oracle(release, zone, at, quiet)


@settings(max_examples=200, deadline=None)
@given(releases(), clocks, windows)
def test_never_inside_quiet_hours_and_never_a_day_late(
    case: tuple[datetime, str], at: time, quiet: Window
) -> None:
    release, zone = case
    due = DeliveryRule(at, quiet).due(release, ZoneInfo(zone))
    assert not quiet.holds(wall(due, zone).time())
    assert due - release < timedelta(days=2, hours=1)


def berlin(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Europe/Berlin"))


@pytest.mark.parametrize(
    ("release", "deliver", "quiet", "expected"),
    [
        # 08:00 local on or after the release; a release at 08:00 is due at once.
        ("2026-11-04T21:00", "08:00", None, "2026-11-05T07:00Z"),
        ("2026-11-05T08:00", "08:00", None, "2026-11-05T07:00Z"),
        ("2026-11-05T07:59", "08:00", None, "2026-11-05T07:00Z"),
        # 02:30 is skipped on 2026-03-29: the moment the clocks jump (03:00 CEST).
        ("2026-03-28T12:00", "02:30", None, "2026-03-29T01:00Z"),
        # 02:30 happens twice on 2026-10-25: the first, or the second if the first is past.
        ("2026-10-25T02:20", "02:30", None, "2026-10-25T00:30Z"),
        ("2026-10-25T02:40", "02:30", None, "2026-10-25T01:30Z"),
        # Quiet hours across midnight move a late release to their end.
        ("2026-11-04T23:10", "release", "22:00-07:00", "2026-11-05T06:00Z"),
        ("2026-11-05T03:00", "release", "22:00-07:00", "2026-11-05T06:00Z"),
        ("2026-11-05T07:00", "release", "22:00-07:00", "2026-11-05T06:00Z"),
        ("2026-11-05T21:59", "release", "22:00-07:00", "2026-11-05T20:59Z"),
        # A delivery time inside quiet hours ends up at their end.
        ("2026-11-04T12:00", "06:00", "22:00-07:00", "2026-11-05T06:00Z"),
        # A window within one day.
        ("2026-11-04T12:30", "release", "12:00-14:00", "2026-11-04T13:00Z"),
    ],
)
def test_examples_in_berlin(release: str, deliver: str, quiet: str | None, expected: str) -> None:
    rule = DeliveryRule.of(deliver, quiet)
    due = rule.due(berlin(release), ZoneInfo("Europe/Berlin"))
    assert due == datetime.fromisoformat(expected)


def test_release_means_the_release_moment() -> None:
    rule = DeliveryRule.of()
    assert rule.immediate
    moment = berlin("2026-03-29T03:30")
    assert rule.due(moment, ZoneInfo("Pacific/Auckland")) == moment


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("22:00", "not a range of times"),
        ("22:00-22:00", "starts and ends at the same time"),
        ("25:00-07:00", "not a time of day"),
        ("10pm-7am", "not a range of times"),
    ],
)
def test_bad_quiet_hours_say_what_is_expected(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_window(value)


@pytest.mark.parametrize("value", ["8:00", "08:60", "noon", "24:00"])
def test_bad_delivery_times_say_what_is_expected(value: str) -> None:
    with pytest.raises(ValueError, match="expected HH:MM"):
        DeliveryRule.of(value)


@pytest.mark.parametrize(
    "name", ["Europe/Berlin", " America/Sao_Paulo ", "UTC", "Asia/Calcutta", "Etc/GMT-3"]
)
def test_zone_names_the_database_knows_are_accepted(name: str) -> None:
    assert subscriber_zone(name) == name.strip()


@pytest.mark.parametrize(
    "name",
    ["", "Mars/Olympus_Mons", "../../etc/passwd", "europe/berlin", "Europe/Berlin/x", "x" * 500],
)
def test_other_zone_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidZone, match="expected an IANA time zone name"):
        subscriber_zone(name)
