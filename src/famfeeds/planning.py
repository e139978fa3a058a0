"""Planning: one stage from content/ to everything a command needs, and the newsletter's issues.

:func:`plan` loads and validates the records, schedules them and lays out the newsletter
issues, once; ``build``, ``check``, ``newsletter`` and ``send`` all start from its result.

Issues: one per release day (the episodes released that day, cancelled ones aside), plus a
preview one week before each season's premiere. An issue is *published* (built into
output/) once its day is on or before the build's reference date; :func:`find_issue` is the
one rule for which issue a date or ``latest`` means.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path

from famfeeds.content import Catalogue, load_catalogue
from famfeeds.errors import FamfeedsError, Problem
from famfeeds.models import Season, Show, normalise_base_url
from famfeeds.schedule import Release, Schedule, build_schedule

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

    @property
    def slug(self) -> str:
        """The issue's file stem under output/newsletter/."""
        return self.day.isoformat()

    @property
    def finale(self) -> bool:
        """True when this issue carries the last episode of a season."""
        return any(r.is_finale for r in self.releases)

    @property
    def season_complete(self) -> bool:
        """True when no episode of the latest season in this issue is still to come."""
        if not self.releases:
            return False
        season = self.releases[-1].season
        return self.next_release is None or self.next_release.season.number != season.number

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


def plan(content: Path, base_url: str | None = None) -> Plan:
    """Load, validate, schedule and lay out the issues; ContentError lists every problem.

    ``base_url`` replaces show.toml's, e.g. to build a staging copy of the site.
    """
    catalogue = load_catalogue(content)
    if base_url is not None:
        try:
            url = normalise_base_url(base_url)
        except ValueError as exc:
            raise FamfeedsError(f"--base-url {base_url}: {exc}") from None
        show = catalogue.show.model_copy(update={"base_url": url})
        catalogue = replace(catalogue, show=show)
    schedule = build_schedule(catalogue)
    issues, note_warnings = plan_issues(catalogue, schedule)
    return Plan(catalogue, schedule, tuple(issues), schedule.warnings + tuple(note_warnings))


def plan_issues(catalogue: Catalogue, schedule: Schedule) -> tuple[list[Issue], list[Problem]]:
    """Every issue the records define, in date order, with warnings for stray notes.

    The reference date does not filter here; see :meth:`Plan.published`.
    """
    show = catalogue.show
    live = [r for r in schedule.releases if not r.cancelled]
    by_day: dict[date, list[Release]] = {}
    for release in live:
        by_day.setdefault(release.day, []).append(release)
    previews: dict[date, list[Season]] = {}
    for season in catalogue.seasons:
        previews.setdefault(season.premiere - timedelta(days=PREVIEW_DAYS), []).append(season)
    notes = {day: text for season in catalogue.seasons for day, text in season.notes.items()}
    ordered = sorted(live, key=lambda r: (r.instant, r.season.number))
    days = [r.day for r in ordered]
    issues = []
    for day in sorted(set(by_day) | set(previews)):
        releases = tuple(sorted(by_day.get(day, []), key=lambda r: r.instant))
        after = bisect_right(days, day)
        following = ordered[after] if after < len(ordered) else None
        issues.append(
            Issue(show, day, releases, tuple(previews.get(day, [])), following, notes.get(day, ""))
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


def find_issue(issues: tuple[Issue, ...] | list[Issue], name: str, as_of: date) -> Issue:
    """The issue that ``name`` (a date, YYYY-MM-DD, or ``latest``) means as of ``as_of``.

    ``latest`` is the newest issue out by ``as_of``; a date must be an issue's day and out
    by ``as_of``. Raises FamfeedsError saying which issues exist.
    """
    out = [i for i in issues if i.day <= as_of]
    if name == "latest":
        if not out:
            raise FamfeedsError(f"no newsletter issue is out as of {as_of}")
        return out[-1]
    try:
        day = date.fromisoformat(name)
    except ValueError:
        raise FamfeedsError(
            f"{name!r} is not an issue: give a date (YYYY-MM-DD) or 'latest'"
        ) from None
    for issue in issues:
        if issue.day == day:
            if issue.day > as_of:
                raise FamfeedsError(f"the issue of {day} is not out yet as of {as_of}")
            return issue
    listing = ", ".join(i.slug for i in out) or "none yet"
    raise FamfeedsError(f"no newsletter issue is dated {day}; issues so far: {listing}")
