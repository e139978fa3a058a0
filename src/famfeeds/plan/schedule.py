"""Turn season records into dated releases: the one place release dates are decided.

The rule (also in the README):

- The season's premiere date and cadence lay out a grid of release slots:
  premiere, premiere + 1 step, premiere + 2 steps, ... (weekly: 7 days).
- An episode with an explicit ``release`` date is released then. Its release
  day takes the grid slot nearest to it (a Thursday before a Friday slot takes
  that Friday's slot), so a one-day holiday shift does not move the rhythm.
- An episode without one is released in the slot after the previous episode's
  slot; the first episode of a season takes the premiere. Several episodes on
  one day (give them the same date) use one slot: the rule counts release days,
  not episodes.
- ``all-at-once`` has a step of zero: every undated episode premieres together.
- The time of day is the episode's own (a date-time ``release``), else the
  season's ``release_time``, else none: an all-day release.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import TypeVar
from zoneinfo import ZoneInfo

from famfeeds.errors import Problem
from famfeeds.records.models import Catalogue, Episode, Season, Show

MIDNIGHT = time(0)
T = TypeVar("T")


@dataclass(frozen=True)
class Release:
    """One episode placed in time."""

    show: Show
    season: Season
    episode: Episode
    day: date
    """The release date in the show's time zone."""
    local_time: time | None
    """The time of day in the show's time zone, or None for an all-day release."""
    rank: int
    """0 for the first episode released on ``day``, 1 for the second, ..."""
    season_end: date | None = None
    """The day of the season's last release that is not cancelled (set by
    :func:`schedule_season` once the whole season is placed)."""

    @property
    def all_day(self) -> bool:
        """True when the release has no time of day."""
        return self.local_time is None

    @property
    def start(self) -> datetime:
        """The scheduled start in the show's time zone (midnight for an all-day release). A
        time the clocks skip that day (02:30 when they jump from 02:00 to 03:00) is the
        instant it names, shown as the clocks read then (03:30, summer time)."""
        clock = MIDNIGHT if self.local_time is None else self.local_time
        start = datetime.combine(self.day, clock, tzinfo=self.show.zone)
        if self.local_time is not None and not _exists(start):
            return _normal(start)
        return start

    @cached_property
    def instant(self) -> datetime:
        """The release instant, in the show's time zone (computed once: sorting and
        grouping by it is most of planning a large catalogue; :func:`schedule_season`
        fills it in as it places the release).

        An all-day release counts from midnight. Episodes sharing a day are a
        second apart in episode order, so every entry has its own timestamp.
        """
        start = self.start
        return start + timedelta(seconds=self.rank) if self.rank else start

    @property
    def updated(self) -> datetime:
        """When the record last changed: its ``updated`` field, never before the release."""
        value = self.episode.updated
        if value is None:
            return self.instant
        stamp = _localise(value, self.show.zone)
        return max(stamp + timedelta(seconds=self.rank), self.instant)

    @property
    def code(self) -> str:
        """A short label such as ``S4 E3``."""
        return f"S{self.season.number} E{self.episode.number}"

    @property
    def key(self) -> str:
        """A stable key such as ``s04e03``, used in anchors, file names and ids."""
        return f"s{self.season.number:02d}e{self.episode.number:02d}"

    @property
    def cancelled(self) -> bool:
        """True when the episode will not be released."""
        return self.episode.status == "cancelled"

    @property
    def is_finale(self) -> bool:
        """True for the season's last episode that is not cancelled."""
        return self.episode.number == self.season.finale_number

    @property
    def closes_season(self) -> bool:
        """True for the finale when nothing of its season comes out after its day: a
        finale released before earlier episodes is not called the finale (what a reader
        is told comes next would contradict it)."""
        return self.is_finale and (self.season_end is None or self.day >= self.season_end)

    def released_by(self, as_of: date) -> bool:
        """True when the episode is out on ``as_of`` (a day in the show's time zone)."""
        return not self.cancelled and self.day <= as_of


@dataclass(frozen=True)
class Schedule:
    """Every release of a catalogue, in season and episode order."""

    releases: tuple[Release, ...]
    warnings: tuple[Problem, ...]

    def states(self, as_of: date) -> list[tuple[Release, str]]:
        """Every release in release order with its state as of ``as_of``: cancelled;
        released once its day is on or before ``as_of``; the first other one is next; the
        rest upcoming. The page and ``famfeeds schedule`` both show this."""
        states = []
        next_seen = False
        for release in sorted(self.releases, key=lambda r: (r.instant, r.season.number)):
            if release.cancelled:
                state = "cancelled"
            elif release.released_by(as_of):
                state = "released"
            elif not next_seen:
                state, next_seen = "next", True
            else:
                state = "upcoming"
            states.append((release, state))
        return states

    def released_count(self, as_of: date) -> int:
        """How many episodes are out as of ``as_of``."""
        return sum(1 for r in self.releases if r.released_by(as_of))

    def released(self, as_of: date) -> list[Release]:
        """Released episodes as of ``as_of``, newest first."""
        out = [r for r in self.releases if r.released_by(as_of)]
        return sorted(
            out, key=lambda r: (r.instant, r.season.number, r.episode.number), reverse=True
        )


def _localise(value: date | datetime, zone: ZoneInfo) -> datetime:
    """A date or date-time from the records as an aware date-time in ``zone``."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=zone)
        return value.astimezone(zone)
    return datetime.combine(value, time(0), tzinfo=zone)  # a record's date: midnight there


def _local_day_and_time(value: date | datetime, zone: ZoneInfo) -> tuple[date, time | None]:
    if isinstance(value, datetime):
        local = _localise(value, zone)
        return local.date(), local.timetz().replace(tzinfo=None)
    return value, None


SANITY_STEPS = 8
"""A dated release more than this many cadence steps after the previous one is a warning."""
SHOWN_DATES = 4
"""How many resulting dates a schedule warning lists before "…"."""


def schedule_season(
    show: Show, season: Season, per_day: dict[date, int] | None = None
) -> tuple[list[Release], list[Problem]]:
    """Place one season's episodes in time; warnings for surprising dates.

    ``per_day`` counts releases per day across seasons, so that every release
    of the show has its own instant. A dated release is a warning (an error with
    ``--strict``) when it falls before the previous episode's, more than
    :data:`SANITY_STEPS` cadence steps after it, before the season's premiere (a finale
    before the premiere among them: an undated episode only ever follows a dated one), or
    more than a year from the premiere, unless the episode says ``date_checked = true``.
    Each warning lists the dates that result for the episode and those that follow it, up
    to the next dated one.
    """
    zone = show.zone
    rule = season.rule
    premiere, step, release_time = season.premiere, rule.step, season.release_time
    releases: list[Release] = []
    warnings: list[Problem] = []
    surprises: list[tuple[int, list[str]]] = []
    slot: int | None = None
    grid: date | None = None  # the day of ``slot``, when known: the next is a step later
    step_days = timedelta(days=step)
    per_day = {} if per_day is None else per_day
    for episode in season.episodes:
        if episode.release is not None:
            day, clock = _local_day_and_time(episode.release, zone)
            slot, grid = rule.slot_of_day(premiere, day), None
        else:
            slot = 0 if slot is None else slot + (1 if step else 0)
            if grid is None or not step:
                grid = rule.day_of_slot(premiere, slot)
            else:
                grid += step_days
            day, clock = grid, None
        if clock is None:
            clock = release_time
        start = datetime.combine(day, MIDNIGHT if clock is None else clock, tzinfo=zone)
        if clock is not None and not _exists(start):
            start = _normal(start)
            own = isinstance(episode.release, datetime)
            warnings.append(
                Problem(
                    episode.source if own else season.source,
                    episode.line_of("release") if own else season.line_of("release_time"),
                    f"S{season.number} E{episode.number}",
                    "release" if own else "release_time",
                    f"{day} {clock:%H:%M} does not exist in {show.timezone} (the clocks skip it)",
                    f"choose another time; it is read as {start:%H:%M} {start:%Z}, the time the "
                    "clocks show then",
                )
            )
        if episode.release is not None and not episode.date_checked:
            reasons = _surprises(season, releases[-1] if releases else None, day)
            if reasons:
                surprises.append((len(releases), reasons))
        rank = per_day.get(day, 0)
        per_day[day] = rank + 1
        instant = start + timedelta(seconds=rank) if rank else start
        releases.append(_release(show, season, episode, day, clock, rank, instant))
    for index, reasons in surprises:
        warnings.append(_surprise(season, releases, index, reasons))
    end = max((r.day for r in releases if not r.cancelled), default=None)
    for release in releases:
        object.__setattr__(release, "season_end", end)  # known once the season is placed
    return releases, warnings


def fast_new(cls: type[T], **fields: object) -> T:
    """A frozen dataclass made without its ``__init__``, its fields set directly: half the
    cost, measured on the 10,000 releases and issues of a daily catalogue. Only for
    dataclasses without ``__post_init__`` or validation (Release, Issue)."""
    made = object.__new__(cls)
    made.__dict__.update(fields)
    return made


def _release(
    show: Show,
    season: Season,
    episode: Episode,
    day: date,
    local_time: time | None,
    rank: int,
    instant: datetime,
) -> Release:
    """``Release(show, season, episode, day, local_time, rank)`` with its :attr:`instant`
    already known: what the frozen dataclass's ``__init__`` does, at half the cost (a
    catalogue of 10,000 episodes makes 10,000 of them per build)."""
    return fast_new(
        Release,
        show=show,
        season=season,
        episode=episode,
        day=day,
        local_time=local_time,
        rank=rank,
        instant=instant,
    )


def _surprises(season: Season, previous: Release | None, day: date) -> list[str]:
    """Why a dated release on ``day`` looks like a typo, given the release before it."""
    reasons = []
    if previous is not None and day < previous.day:
        reasons.append(f"before E{previous.episode.number} ({previous.day})")
    step = season.rule.step
    if previous is not None and step and (day - previous.day).days > SANITY_STEPS * step:
        gap = (day - previous.day).days
        reasons.append(
            f"{gap:,} days after E{previous.episode.number} ({previous.day}), more than "
            f"{SANITY_STEPS} steps of the {season.cadence} cadence ({SANITY_STEPS * step} days)"
        )
    if day < _years_later(season.premiere, -1):
        reasons.append(f"more than a year before the season's premiere ({season.premiere})")
    elif day < season.premiere:
        reasons.append(f"before the season's premiere ({season.premiere})")
    elif day > _years_later(season.premiere, 1):
        reasons.append(f"more than a year after the season's premiere ({season.premiere})")
    return reasons


def _surprise(season: Season, releases: list[Release], index: int, reasons: list[str]) -> Problem:
    """The warning for the release at ``index``, with the dates it and its followers get:
    up to the next dated episode, which keeps its own date."""
    release = releases[index]
    moved = [release]
    for later in releases[index + 1 :]:
        if later.episode.release is not None:
            break
        moved.append(later)
    dates = ", ".join(f"E{r.episode.number} → {r.day}" for r in moved[:SHOWN_DATES])
    if len(moved) > SHOWN_DATES:
        dates += " …"
    which = "the finale" if release.is_finale else f"E{release.episode.number}"
    return Problem(
        release.episode.source,
        release.episode.line_of("release"),
        f"S{season.number} E{release.episode.number}",
        "release",
        f"{which} is released {release.day}, " + " and ".join(reasons) + f"; so {dates}",
        "check the year, month and day; if the date is right, add date_checked = true to "
        "the episode's front matter",
    )


def _years_later(day: date, years: int) -> date:
    """The same day ``years`` later (28 February for 29 February in a common year), kept
    within the years a date can hold."""
    year = min(max(day.year + years, MINYEAR), MAXYEAR)
    try:
        return day.replace(year=year)
    except ValueError:
        return day.replace(year=year, day=28)


def _normal(local: datetime) -> datetime:
    """The instant an aware wall-clock time names, as the clocks of its zone read it."""
    return local.astimezone(UTC).astimezone(local.tzinfo)


def _exists(local: datetime) -> bool:
    """False when a wall-clock time (aware, in its zone) falls in a daylight-saving gap."""
    return _normal(local).replace(tzinfo=None) == local.replace(tzinfo=None)


def build_schedule(catalogue: Catalogue) -> Schedule:
    """Schedule every season of the catalogue."""
    releases: list[Release] = []
    warnings: list[Problem] = []
    per_day: dict[date, int] = {}
    for season in catalogue.seasons:
        found, problems = schedule_season(catalogue.show, season, per_day)
        releases += found
        warnings += problems
    return Schedule(tuple(releases), tuple(warnings))
