"""Newsletter issues: which exist and what each says, decided from the schedule alone.

One issue per release day (episodes released that day, cancelled ones aside), plus
a preview one week before each season's premiere. An issue exists once its date is
on or before the build's reference date.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, timedelta

from famfeeds.content import Catalogue
from famfeeds.errors import Problem
from famfeeds.models import Season, Show
from famfeeds.schedule import Release, Schedule
from famfeeds.templating import long_date

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
        return any(r.episode.number == last_episode(r.season) for r in self.releases)

    @property
    def season_complete(self) -> bool:
        """True when no episode of the latest season in this issue is still to come."""
        if not self.releases:
            return False
        season = self.releases[-1].season
        return self.next_release is None or self.next_release.season.number != season.number

    def subject(self) -> str:
        """The email subject and the HTML <title>, on one line."""
        parts = []
        if self.releases:
            first, last = self.releases[0], self.releases[-1]
            if len(self.releases) == 1:
                text = f"{self.show.title} {first.code}: {first.episode.title}"
            else:
                span = f"{first.code}\u2013E{last.episode.number}"
                text = f"{self.show.title} {span}: " + ", ".join(
                    r.episode.title for r in self.releases
                )
            parts.append(text + (" (season finale)" if self.finale else ""))
        for season in self.previews:
            parts.append(f"{self.show.title} {season.title} starts {long_date(season.premiere)}")
        return " · ".join(" ".join(p.split()) for p in parts)


def last_episode(season: Season) -> int:
    """The number of the season's finale: its last episode that is not cancelled."""
    return max((e.number for e in season.episodes if e.status != "cancelled"), default=0)


def plan_issues(catalogue: Catalogue, schedule: Schedule) -> tuple[list[Issue], list[Problem]]:
    """Every issue the records define, in date order, with warnings for stray notes.

    The reference date does not filter here; see :func:`published`.
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


def published(issues: list[Issue], as_of: date) -> list[Issue]:
    """The issues out by ``as_of``."""
    return [i for i in issues if i.day <= as_of]
