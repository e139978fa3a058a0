"""When each subscriber is due an issue: the release moment, a local delivery time, quiet hours.

The rule (pure: the release moment and the subscriber's zone in, one instant out):

- ``deliver = "release"`` (the default): due at the release moment itself.
- ``deliver = "08:00"``: due at the first 08:00 on the subscriber's wall clock that is on or
  after the release moment. Never before the release moment.
- ``quiet_hours = "22:00-07:00"``: a due moment whose local wall time is inside the window
  (start included, end excluded) moves to the first instant whose wall time is outside it:
  the window's end, or earlier if the clocks fall back to before its start. A window
  whose start is after its end crosses midnight. Quiet hours only ever move a moment
  later.
- Daylight-saving time, for a wall time that is looked up (the delivery time, the end of
  quiet hours): a time the zone skips (clocks spring forward over it) means the first
  instant after the gap (the moment the clocks jump); a time the zone repeats (clocks fall
  back) means its first occurrence, unless only the second is on or after the release
  moment, in which case the second is the first one that qualifies.

Zones are IANA names; :func:`subscriber_zone` is the one check of a name from outside (a
browser, a CSV, the command line): a name the tz database knows, nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from famfeeds.errors import FamfeedsError

if TYPE_CHECKING:
    from famfeeds.records.models import Newsletter

RELEASE = "release"
"""``deliver`` for sending as soon as the issue is out."""
ZONE_NAME_LIMIT = 64
"""The longest zone name accepted from outside (the longest in the database has 32)."""
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_WINDOW = re.compile(r"\s*(\d\d:\d\d)\s*-\s*(\d\d:\d\d)\s*")


class InvalidZone(FamfeedsError):
    """A time zone name the tz database does not know; the message says what is expected."""


MACHINE_ZONES = frozenset({"localtime", "Factory", "posixrules"})
"""Names the tz database may hold that are no place's zone: ``localtime`` follows whatever
machine sends the mail, ``Factory`` is a placeholder."""


@cache
def known_zones() -> frozenset[str]:
    """Every zone name the tz database (the tzdata package or the system's) knows."""
    return frozenset(available_timezones())


def subscriber_zone(name: str) -> str:
    """``name`` stripped, if it is a zone the tz database knows (``Europe/Berlin``, ``UTC``;
    old aliases such as ``Asia/Calcutta``, which some browsers report, are kept as given).
    Raises InvalidZone otherwise."""
    text = name.strip()
    if (
        not text
        or len(text) > ZONE_NAME_LIMIT
        or text not in known_zones()
        or text in MACHINE_ZONES
    ):
        shown = text if len(text) <= ZONE_NAME_LIMIT else text[:ZONE_NAME_LIMIT] + "…"
        raise InvalidZone(
            f"unknown time zone {shown!r}: expected an IANA time zone name such as "
            "'Europe/Berlin' or 'America/Sao_Paulo'"
        )
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidZone(f"time zone {text!r} cannot be loaded from the tz database") from None
    return text


def parse_clock(value: str, what: str) -> time:
    """``HH:MM`` (24-hour) as a time; raises ValueError naming ``what`` otherwise."""
    match = _CLOCK.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"{what} {value!r} is not a time of day: expected HH:MM, e.g. 08:00")
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class Window:
    """Quiet hours: local wall times from ``start`` (included) to ``end`` (excluded)."""

    start: time
    end: time

    @property
    def crosses_midnight(self) -> bool:
        return self.start > self.end

    def holds(self, wall: time) -> bool:
        """Whether a local wall time is inside the window."""
        if self.crosses_midnight:
            return wall >= self.start or wall < self.end
        return self.start <= wall < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_window(value: str) -> Window:
    """``HH:MM-HH:MM`` as quiet hours; raises ValueError saying what is expected."""
    match = _WINDOW.fullmatch(value)
    expected = "expected HH:MM-HH:MM, e.g. 22:00-07:00"
    if match is None:
        raise ValueError(f"quiet_hours {value!r} is not a range of times: {expected}")
    start = parse_clock(match.group(1), "quiet_hours start")
    end = parse_clock(match.group(2), "quiet_hours end")
    if start == end:
        raise ValueError(
            f"quiet_hours {value!r} starts and ends at the same time: {expected}, with a "
            "different start and end"
        )
    return Window(start, end)


@dataclass(frozen=True)
class DeliveryRule:
    """``[newsletter] deliver`` and ``quiet_hours``: ``at`` None for the release moment."""

    at: time | None = None
    quiet: Window | None = None

    @classmethod
    def of(cls, deliver: str = RELEASE, quiet_hours: str | None = None) -> DeliveryRule:
        """The rule from show.toml's strings (ValueError on a bad one)."""
        at = None if deliver.strip() == RELEASE else parse_clock(deliver, "deliver")
        return cls(at, None if quiet_hours is None else parse_window(quiet_hours))

    @classmethod
    def of_newsletter(cls, newsletter: Newsletter) -> DeliveryRule:
        """The rule of show.toml's ``[newsletter]`` (its strings are validated there)."""
        return cls.of(newsletter.deliver, newsletter.quiet_hours)

    @property
    def immediate(self) -> bool:
        """True when everyone is due at the release moment (no local time plays a part)."""
        return self.at is None and self.quiet is None

    def due(self, release: datetime, zone: ZoneInfo) -> datetime:
        """The moment (UTC) a subscriber in ``zone`` is due the issue released at ``release``
        (an aware datetime): see the module's rule."""
        return due_moment(release, zone, self.at, self.quiet)


def _instants(day: date, wall: time, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants at which the zone's wall clock reads ``day`` ``wall``: one, two (a
    repeated hour), or, for a skipped time, the one instant the clock jumps over it."""
    found: list[datetime] = []
    for fold in (0, 1):
        local = datetime.combine(day, wall, tzinfo=zone).replace(fold=fold)
        instant = local.astimezone(UTC)
        real = instant.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None)
        if real and instant not in found:
            found.append(instant)
    if found:
        return sorted(found)
    return [_gap_end(day, wall, zone)]


def _gap_end(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The instant the clocks jump over a skipped wall time (the first valid one after it).

    The two readings of the skipped time (with the offset before and after the change)
    bracket the change; the first instant whose wall time is past ``wall`` is found by
    bisection to the second."""
    naive = datetime.combine(day, wall)
    a = datetime.combine(day, wall, tzinfo=zone).replace(fold=0).astimezone(UTC)
    b = datetime.combine(day, wall, tzinfo=zone).replace(fold=1).astimezone(UTC)
    low, high = min(a, b), max(a, b)
    # wall(low) < naive <= wall(high): shrink to the first second whose wall time passes it
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle <= low:
            break
        if middle.astimezone(zone).replace(tzinfo=None) > naive:
            high = middle
        else:
            low = middle
    return high


def _first_after(release: datetime, wall: time, zone: ZoneInfo) -> datetime:
    """The first instant on or after ``release`` when the zone's clock reads ``wall`` (or
    jumps over it)."""
    day = release.astimezone(zone).date() - timedelta(days=1)
    for offset in range(4):
        for instant in _instants(day + timedelta(days=offset), wall, zone):
            if instant >= release:
                return instant
    raise AssertionError("a wall time recurs within every three days")  # pragma: no cover


def due_moment(
    release: datetime, zone: ZoneInfo, at: time | None, quiet: Window | None
) -> datetime:
    """The rule of this module: ``release`` (aware), or the first ``at`` in ``zone`` on or
    after it, then moved out of ``quiet`` hours; always on or after ``release``, in UTC."""
    moment = release.astimezone(UTC)
    if at is not None:
        moment = _first_after(moment, at, zone)
    if quiet is not None:
        for _ in range(3):  # the end of a window is outside it, bar a day-long gap
            if not quiet.holds(_wall(moment, zone)):
                break
            end = _first_after(moment + timedelta(seconds=1), quiet.end, zone)
            change = _change_between(moment, end, zone)
            if change is not None and change < end and not quiet.holds(_wall(change, zone)):
                end = change  # the clocks fell back to before the window
            moment = end
    return moment


def _wall(moment: datetime, zone: ZoneInfo) -> time:
    """The zone's wall-clock time of day at ``moment``."""
    return moment.astimezone(zone).time().replace(tzinfo=None)


def _change_between(start: datetime, end: datetime, zone: ZoneInfo) -> datetime | None:
    """The instant (to the second) the zone's offset changes between ``start`` and ``end``
    (less than two days apart, so at most one change), or None when it does not."""
    before = start.astimezone(zone).utcoffset()
    if end.astimezone(zone).utcoffset() == before:
        return None
    low, high = start, end
    while high - low > timedelta(seconds=1):
        middle = (low + (high - low) / 2).replace(microsecond=0)
        if middle <= low:
            break
        if middle.astimezone(zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high
