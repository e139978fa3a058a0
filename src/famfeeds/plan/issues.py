"""Planning: one stage from content/ to everything a command needs, and the newsletter's issues.

:func:`plan` loads and validates the records, schedules them and lays out the newsletter
issues, once; ``build``, ``check``, ``newsletter`` and ``send`` all start from its result.

Issues: one per release day (the episodes released that day, cancelled ones aside), plus a
preview one week before each season's premiere.

Finale, season complete and what comes next follow the release order and the episode
numbers together, so an issue never contradicts a later one when a season comes out of
order, all at once or several episodes a day: a season is *complete* with the issue of its
last release day (whatever the numbers); an issue is a *finale* when it completes a season
and carries that season's last-numbered episode; *what comes next* is every episode of the
next release day's season out that day (a triple premiere is three episodes).

An issue is *published* (built into output/) once its day is on or before the build's
reference date; :func:`find_issue` is the one rule for which issue a date or ``latest``
means at a given moment, for every command.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from famfeeds.errors import FamfeedsError, Problem
from famfeeds.plan.schedule import Release, Schedule, build_schedule, fast_new
from famfeeds.records.models import Catalogue, Season, Show
from famfeeds.records.zones import zone_problems

PREVIEW_DAYS = 7


@dataclass(frozen=True)
class Issue:
    """One newsletter issue."""

    show: Show
    day: date
    releases: tuple[Release, ...]
    """Episodes out on ``day``, in release order."""
    previews: tuple[Season, ...]
    """Seasons that premiere a week after ``day``."""
    next_release: Release | None
    """The first episode released after ``day``, if any is scheduled."""
    note: str
    """The editor's note for this issue (Markdown), or ''."""
    coming: tuple[Release, ...] = field(default=(), compare=False)
    """What comes next: ``next_release`` and the other episodes of its season out on its
    day, in release order (derived from the records, like the rest)."""
    completes: tuple[int, ...] = field(default=(), compare=False)
    """The numbers of the seasons in ``releases`` with no episode left to come after
    ``day``: this issue completes them."""
    coming_completes: bool = field(default=False, compare=False)
    """True when ``coming`` holds the last release day of its season."""

    @property
    def slug(self) -> str:
        """The issue's file stem under output/newsletter/."""
        return self.day.isoformat()

    @property
    def finale(self) -> bool:
        """True when this issue carries a season's last-numbered episode and completes
        that season: a finale released before earlier episodes is not yet the end."""
        return any(r.is_finale and r.season.number in self.completes for r in self.releases)

    @property
    def season_complete(self) -> bool:
        """True when no episode of the latest season in this issue is still to come, by
        release date (not by number)."""
        return bool(self.releases) and self.releases[-1].season.number in self.completes

    @property
    def coming_finale(self) -> bool:
        """True when what comes next includes the season finale and ends the season."""
        return self.coming_completes and any(r.is_finale for r in self.coming)

    @property
    def released_at(self) -> datetime:
        """The moment the issue's news is true: its first episode's release instant (an
        all-day release counts from the start of its day), or the start of a preview day."""
        if self.releases:
            return min(r.instant for r in self.releases)
        return datetime.combine(self.day, time(0), tzinfo=self.show.zone)


@dataclass(frozen=True)
class Plan:
    """The records, their schedule and the newsletter's issues, with every warning."""

    catalogue: Catalogue
    schedule: Schedule
    issues: tuple[Issue, ...]
    warnings: tuple[Problem, ...]

    @property
    def show(self) -> Show:
        """The show."""
        return self.catalogue.show

    def published(self, as_of: date) -> list[Issue]:
        """The issues out by ``as_of`` (a day in the show's zone), oldest first."""
        return [i for i in self.issues if i.day <= as_of]


def make_plan(catalogue: Catalogue) -> Plan:
    """Schedule the records and lay out the issues: the plan, with every warning the
    records, their zones, the schedule and the issues gave."""
    schedule = build_schedule(catalogue)
    issues, note_warnings = plan_issues(catalogue, schedule)
    warnings = (
        catalogue.warnings + zone_problems(catalogue) + schedule.warnings + tuple(note_warnings)
    )
    return Plan(catalogue, schedule, tuple(issues), warnings)


def plan_issues(catalogue: Catalogue, schedule: Schedule) -> tuple[list[Issue], list[Problem]]:
    """Every issue the records define, in date order, with warnings for stray notes.

    The reference date does not filter here; see :meth:`Plan.published`.
    """
    show = catalogue.show
    live = [r for r in schedule.releases if not r.cancelled]
    by_day: dict[date, list[Release]] = {}
    for release in live:
        found = by_day.get(release.day)
        if found is None:
            by_day[release.day] = [release]
        else:
            found.append(release)
    previews: dict[date, list[Season]] = {}
    for season in catalogue.seasons:
        previews.setdefault(season.premiere - timedelta(days=PREVIEW_DAYS), []).append(season)
    notes = {day: text for season in catalogue.seasons for day, text in season.notes.items()}
    ordered = sorted(live, key=_release_order)
    days = [r.day for r in ordered]
    last_day: dict[int, date] = {}
    for release in live:
        number = release.season.number
        if number not in last_day or last_day[number] < release.day:
            last_day[number] = release.day
    # Release days come in schedule order, nearly sorted already: sorting them is linear.
    issue_days = sorted([*by_day, *(day for day in previews if day not in by_day)])
    issues = []
    for day in issue_days:
        same_day = by_day.get(day, ())
        # Sorted by instant: a day's releases are in schedule order, not always in time order.
        releases = tuple(same_day) if len(same_day) < 2 else tuple(sorted(same_day, key=_instant))
        after = bisect_right(days, day)
        following = ordered[after] if after < len(ordered) else None
        coming: tuple[Release, ...] = ()
        if following is not None:
            number = following.season.number
            coming = tuple(
                sorted(
                    (r for r in by_day[following.day] if r.season.number == number),
                    key=_instant,
                )
            )
        previewed = previews.get(day)
        issues.append(
            _issue(
                show,
                day,
                releases,
                () if previewed is None else tuple(previewed),
                following,
                notes.get(day, ""),
                coming,
                tuple(
                    sorted({r.season.number for r in releases if last_day[r.season.number] == day})
                ),
                following is not None and last_day[following.season.number] == following.day,
            )
        )
    dates = {i.day for i in issues}
    warnings = [
        Problem(
            f"{season.source.rsplit('/', 1)[0]}/newsletter/{day}.md",
            None,
            f"season {season.number}, note {day}",
            None,
            "no newsletter issue has this date, so the note is not used",
            "rename it after a release day or a preview day (a week before a premiere)",
        )
        for season in catalogue.seasons
        for day in season.notes
        if day not in dates
    ]
    return issues, warnings


def _issue(
    show: Show,
    day: date,
    releases: tuple[Release, ...],
    previews: tuple[Season, ...],
    next_release: Release | None,
    note: str,
    coming: tuple[Release, ...],
    completes: tuple[int, ...],
    coming_completes: bool,
) -> Issue:
    """``Issue(show, day, releases, ...)`` at half the cost of the frozen dataclass's
    ``__init__`` (a daily catalogue has an issue a day)."""
    return fast_new(
        Issue,
        show=show,
        day=day,
        releases=releases,
        previews=previews,
        next_release=next_release,
        note=note,
        coming=coming,
        completes=completes,
        coming_completes=coming_completes,
    )


def _release_order(release: Release) -> tuple[datetime, int]:
    return release.instant, release.season.number


def _instant(release: Release) -> datetime:
    return release.instant


class IssueNotDue(FamfeedsError):
    """The issue asked for may not be sent (or shown) at this moment: not out yet, or too old.

    ``issue`` is the issue concerned (None when ``latest`` found no issue out at all).
    """

    def __init__(self, message: str, issue: Issue | None) -> None:
        super().__init__(message)
        self.issue = issue


class NotOutYet(IssueNotDue):
    """The issue's release moment has not come."""


class TooOld(IssueNotDue):
    """The issue came out longer ago than the allowed age."""


def describe_moment(moment: datetime, zone: ZoneInfo) -> str:
    """A moment as people read it: ``2026-12-23 21:00 EST (America/New_York)``."""
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({zone.key})"


def describe_age(age: timedelta) -> str:
    """A duration in whole days and hours: ``9 days 3 hours``, ``5 hours``."""
    hours = int(age.total_seconds() // 3600)
    days, hours = divmod(hours, 24)
    parts = [f"{days} day{'s' * (days != 1)}"] if days else []
    if hours or not days:
        parts.append(f"{hours} hour{'s' * (hours != 1)}")
    return " ".join(parts)


def _moment(as_of: date | datetime, zone: ZoneInfo) -> datetime:
    """The instant ``as_of`` stands for: a datetime as it is; a date as the end of that day in
    the show's zone (what a build of that date contains)."""
    if isinstance(as_of, datetime):
        if as_of.tzinfo is None:
            raise ValueError("find_issue needs an aware datetime")
        return as_of
    return datetime.combine(as_of + timedelta(days=1), time(0), tzinfo=zone) - timedelta(
        microseconds=1
    )


def issue_blockers(
    issue: Issue, now: datetime, max_age: timedelta | None, shown: str | None = None
) -> list[str]:
    """Why ``issue`` should not be sent at ``now``: not out yet, or older than ``max_age``.

    Empty when it may be sent. :func:`find_issue` refuses for these reasons unless forced;
    a forced caller prints them, so the override is never silent. ``shown`` is how ``now``
    is written in the message (default: the moment in the show's zone).
    """
    zone = issue.show.zone
    out = issue.released_at
    if out > now:
        return [
            f"the issue of {issue.slug} is not out yet as of {shown or describe_moment(now, zone)}"
            f": it comes out on {describe_moment(out, zone)}, in {describe_age(out - now)}"
        ]
    if max_age is not None and now - out > max_age:
        return [
            f"the issue of {issue.slug} came out {describe_age(now - out)} ago, on "
            f"{describe_moment(out, zone)}: more than the {describe_age(max_age)} allowed"
        ]
    return []


def find_issue(
    issues: tuple[Issue, ...] | list[Issue],
    name: str,
    as_of: date | datetime,
    *,
    max_age: timedelta | None = None,
    force: bool = False,
    override: str | None = None,
) -> Issue:
    """The issue that ``name`` (a date, YYYY-MM-DD, or ``latest``) means at ``as_of``.

    The one rule, for every command: an issue is *out* once its release moment
    (:attr:`Issue.released_at`: the first episode's release instant in the show's zone, the
    start of the day for an all-day release or a preview) is at or before the moment.
    ``as_of`` is that moment: a datetime (``send`` passes the clock), or a date, which stands
    for the end of that day in the show's zone (``newsletter`` passes the build's reference
    date, so it names exactly the issues a build of that date contains).

    - ``latest``: the newest issue out. None out yet raises :class:`NotOutYet` (with the first
      issue, if any); the newest older than ``max_age`` raises :class:`TooOld`.
    - a date: that issue; refused with :class:`NotOutYet` before its release moment (saying
      when it becomes sendable) and with :class:`TooOld` past ``max_age``.

    ``force`` skips both refusals (the caller reports :func:`issue_blockers`); ``override``
    names the option that does so, for the messages (e.g. ``--force``). Other errors
    (not a date, no issue that day) raise FamfeedsError listing the issues that exist.
    """
    if not issues:
        raise FamfeedsError("the show has no newsletter issues: no episode is scheduled")
    zone = issues[0].show.zone
    now = _moment(as_of, zone)
    shown = describe_moment(now, zone) if isinstance(as_of, datetime) else str(as_of)
    hint = f"; {override} sends it anyway" if override else ""
    ordered = sorted(issues, key=lambda i: (i.released_at, i.day))
    out = [i for i in ordered if i.released_at <= now]
    if name == "latest":
        if not out:
            first = ordered[0]
            raise NotOutYet(
                f"no newsletter issue is out as of {shown}: the first, {first.slug}, comes out "
                f"on {describe_moment(first.released_at, zone)}",
                first,
            )
        issue = out[-1]
        problems = [] if force else issue_blockers(issue, now, max_age, shown)
        if problems:
            later = [i for i in ordered if i.released_at > now]
            upcoming = (
                f"; the next, {later[0].slug}, comes out on "
                f"{describe_moment(later[0].released_at, zone)}"
                if later
                else "; no later issue is scheduled"
            )
            raise TooOld(f"{problems[0]}{upcoming}{hint}", issue)
        return issue
    try:
        day = date.fromisoformat(name)
    except ValueError:
        raise FamfeedsError(
            f"{name!r} is not an issue: give a date (YYYY-MM-DD) or 'latest'"
        ) from None
    for issue in issues:
        if issue.day == day:
            problems = [] if force else issue_blockers(issue, now, max_age, shown)
            if problems:
                kind = NotOutYet if issue.released_at > now else TooOld
                raise kind(f"{problems[0]}{hint}", issue)
            return issue
    listing = ", ".join(i.slug for i in out) or "none yet"
    raise FamfeedsError(f"no newsletter issue is dated {day}; issues so far: {listing}")
