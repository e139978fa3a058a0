"""The schedule as a person reads it: every episode's date, status, issue, and why.

:func:`timetable` turns a plan into rows for ``famfeeds schedule``: each episode's release day
and time in the show's zone and in UTC, its status as of a date (the page's rule: released,
next, upcoming or cancelled), the newsletter issue that carries it, the episodes sharing its
day, and the reason for its date, read off the rule in :mod:`famfeeds.plan.schedule`:

- "the premiere": episode 1 without a ``release``;
- "next weekly slot after E3": an episode without a ``release``;
- "from release = 2026-11-24, in the Wed 2026-11-25 slot": a ``release`` off the grid of
  slots, which takes the nearest one (a holiday shift);
- "...; shares the premiere's slot" / "shares E9's day": a ``release`` on the day of the
  episode before it.

Slots of the cadence's grid that no episode takes, between the first and the last taken,
are gaps: "no episode on Wed 2026-11-25". This module is pure (no clock, no files); the
command supplies the reference date.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from famfeeds.plan.issues import Plan
from famfeeds.plan.schedule import Release
from famfeeds.records.models import Season, Show

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
"""English weekday names, fixed here so no locale changes the output."""
STATUSES = ("released", "next", "upcoming", "cancelled")


def weekday(day: date) -> str:
    """The abbreviated English weekday of ``day``: Wed."""
    return WEEKDAYS[day.weekday()][:3]


def short_day(day: date) -> str:
    """``Wed 2026-11-25``."""
    return f"{weekday(day)} {day.isoformat()}"


@dataclass(frozen=True)
class Entry:
    """One episode in the timetable."""

    release: Release
    status: str
    """released, next, upcoming or cancelled (as on the page)."""
    issue: date | None
    """The day of the newsletter issue that carries the episode; None without a newsletter
    or for a cancelled episode."""
    reason: str
    """Why the release day is what it is."""
    same_day: tuple[str, ...]
    """Every other episode released on the same day (E7, or S2 E1 from another season); not
    noted within an all-at-once season, where every episode shares the premiere."""

    @property
    def code(self) -> str:
        """S4 E3."""
        return self.release.code

    @property
    def title(self) -> str:
        """The episode's title."""
        return self.release.episode.title

    @property
    def utc(self) -> datetime | None:
        """The release time in UTC; None for an all-day release."""
        if self.release.all_day:
            return None
        return self.release.start.astimezone(UTC)

    @property
    def zone_abbreviation(self) -> str:
        """The show zone's abbreviation at the release (EST, EDT); '' for all-day."""
        if self.release.all_day:
            return ""
        return self.release.start.tzname() or ""

    @property
    def local_text(self) -> str:
        """``Wed 2026-11-04 21:00 EST`` or ``Wed 2026-11-04 all day``."""
        r = self.release
        if r.local_time is None:
            return f"{short_day(r.day)} all day"
        return f"{short_day(r.day)} {r.start:%H:%M} {self.zone_abbreviation}".rstrip()

    @property
    def utc_text(self) -> str:
        """``2026-11-05 02:00``, or ``-`` for an all-day release (it has no one instant)."""
        utc = self.utc
        return "-" if utc is None else f"{utc:%Y-%m-%d %H:%M}"

    @property
    def note(self) -> str:
        """The reason, with the episodes that share the day."""
        if not self.same_day:
            return self.reason
        if len(self.same_day) == 1:
            return f"{self.reason}; double bill with {self.same_day[0]}"
        return f"{self.reason}; {len(self.same_day) + 1} episodes this day"

    def as_json(self) -> dict[str, Any]:
        """The entry for ``famfeeds schedule --json``."""
        r = self.release
        return {
            "season": r.season.number,
            "episode": r.episode.number,
            "key": r.key,
            "title": self.title,
            "date": r.day.isoformat(),
            "weekday": WEEKDAYS[r.day.weekday()],
            "time": None if r.local_time is None else f"{r.start:%H:%M}",
            "zone": self.zone_abbreviation or None,
            "utc": None if self.utc is None else self.utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "all_day": r.all_day,
            "status": self.status,
            "issue": None if self.issue is None else self.issue.isoformat(),
            "same_day": [_key_of(code, r.season.number) for code in self.same_day],
            "reason": self.reason,
            "file": r.episode.source,
        }


def _key_of(code: str, season: int) -> str:
    """``E7`` (of ``season``) or ``S1 E7`` as a key: s01e07."""
    if code.startswith("S"):
        number, episode = code[1:].split(" E")
        return f"s{int(number):02d}e{int(episode):02d}"
    return f"s{season:02d}e{int(code[1:]):02d}"


@dataclass(frozen=True)
class Gap:
    """Consecutive release slots of a season that no episode takes."""

    first: date
    last: date
    slots: int
    cadence: str

    @property
    def text(self) -> str:
        """``no episode on Wed 2026-11-25``, or the range of a longer break."""
        if self.slots == 1:
            return f"no episode on {short_day(self.first)}"
        return (
            f"no episodes on {self.slots} {self.cadence} slots, "
            f"{short_day(self.first)} to {short_day(self.last)}"
        )

    def as_json(self) -> dict[str, Any]:
        """The gap for ``famfeeds schedule --json``."""
        return {
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "slots": self.slots,
            "text": self.text,
        }


@dataclass(frozen=True)
class SeasonTable:
    """One season's entries, in episode order, and its gaps."""

    season: Season
    entries: tuple[Entry, ...]
    gaps: tuple[Gap, ...]
    preview_issue: date | None
    """The newsletter's preview issue a week before the premiere, if there is a newsletter."""

    def heading(self, show: Show) -> str:
        """``Season 4 · new episodes on Fridays at 21:00 · premiere Fri 2023-11-10 · ...``."""
        season = self.season
        phrase = season.rule.phrase.format(weekday=WEEKDAYS[season.premiere.weekday()])
        clock = f" at {season.release_time:%H:%M}" if season.release_time else ""
        if clock and season.rule.step == 0:
            clock = "," + clock  # every episode at once, at 00:00
        parts = [
            f"Season {season.number}: {season.title}"
            if season.title != f"Season {season.number}"
            else season.title,
            f"{phrase}{clock}",
            f"premiere {short_day(season.premiere)}",
        ]
        if self.preview_issue is not None:
            parts.append(f"newsletter preview {self.preview_issue}")
        return " · ".join(parts)

    def rows(self) -> list[Entry | Gap]:
        """Entries in episode order, each gap placed before the first entry after it."""
        out: list[Entry | Gap] = []
        gaps = list(self.gaps)
        for entry in self.entries:
            while gaps and gaps[0].first < entry.release.day:
                out.append(gaps.pop(0))
            out.append(entry)
        return out + gaps


@dataclass(frozen=True)
class Timetable:
    """Every season's table, as of a date."""

    show: Show
    as_of: date
    seasons: tuple[SeasonTable, ...]

    @property
    def newsletter(self) -> bool:
        """True when the show has a newsletter (so entries have issues)."""
        return self.show.newsletter is not None

    def as_json(self) -> dict[str, Any]:
        """The whole timetable for ``famfeeds schedule --json``."""
        return {
            "show": self.show.title,
            "timezone": self.show.timezone,
            "as_of": self.as_of.isoformat(),
            "newsletter": self.newsletter,
            "seasons": [
                {
                    "number": t.season.number,
                    "title": t.season.title,
                    "premiere": t.season.premiere.isoformat(),
                    "cadence": t.season.cadence,
                    "release_time": None
                    if t.season.release_time is None
                    else f"{t.season.release_time:%H:%M}",
                    "preview_issue": None
                    if t.preview_issue is None
                    else t.preview_issue.isoformat(),
                    "episodes": [e.as_json() for e in t.entries],
                    "gaps": [g.as_json() for g in t.gaps],
                }
                for t in self.seasons
            ],
        }


def timetable(planned: Plan, as_of: date, season: int | None = None) -> Timetable:
    """The timetable of every season (or only ``season``) as of ``as_of``."""
    show = planned.show
    status = {
        (r.season.number, r.episode.number): state for r, state in planned.schedule.states(as_of)
    }
    issue_of: dict[tuple[int, int], date] = {}
    previews: dict[int, date] = {}
    if show.newsletter is not None:
        for issue in planned.issues:
            for r in issue.releases:
                issue_of[(r.season.number, r.episode.number)] = issue.day
            for s in issue.previews:
                previews[s.number] = issue.day
    by_day: dict[date, list[Release]] = {}
    for r in planned.schedule.releases:
        if not r.cancelled:
            by_day.setdefault(r.day, []).append(r)
    tables = []
    for s in planned.catalogue.seasons:
        if season is not None and s.number != season:
            continue
        releases = [r for r in planned.schedule.releases if r.season.number == s.number]
        entries = []
        for index, r in enumerate(releases):
            key = (s.number, r.episode.number)
            # An all-at-once season shares its day by design: no note for that.
            others = [] if r.cancelled or s.rule.step == 0 else by_day.get(r.day, [])
            entries.append(
                Entry(
                    r,
                    status[key],
                    issue_of.get(key),
                    reason(releases[index - 1] if index else None, r),
                    tuple(_short_code(o, s) for o in others if o is not r),
                )
            )
        tables.append(SeasonTable(s, tuple(entries), gaps(s, releases), previews.get(s.number)))
    return Timetable(show, as_of, tuple(tables))


def _short_code(release: Release, season: Season) -> str:
    """``E6`` for an episode of ``season``, ``S2 E1`` for another season's."""
    if release.season.number == season.number:
        return f"E{release.episode.number}"
    return release.code


def reason(previous: Release | None, release: Release) -> str:
    """Why ``release`` is on its day, given the release before it in the same season."""
    season, episode = release.season, release.episode
    rule = season.rule
    if episode.release is None:
        if previous is None:
            return "the premiere"
        if rule.step == 0:
            return "all at once, on the premiere"
        return f"next {rule.name} slot after E{previous.episode.number}"
    value = episode.release.isoformat()
    text = f"from release = {value}"
    slot_day = rule.day_of_slot(season.premiere, rule.slot_of_day(season.premiere, release.day))
    if rule.step and slot_day != release.day and slot_day >= season.premiere:
        text += f", in the {short_day(slot_day)} slot"
    if previous is not None and previous.day == release.day == season.premiere:
        text += "; shares the premiere's slot"
    return text


def gaps(season: Season, releases: list[Release]) -> tuple[Gap, ...]:
    """Runs of grid slots, from the premiere to the last slot taken, that no episode takes."""
    rule = season.rule
    if rule.step == 0 or not releases:
        return ()
    taken = {rule.slot_of_day(season.premiere, r.day) for r in releases}
    free = [n for n in range(min(0, *taken), max(taken)) if n not in taken]
    runs: list[list[int]] = []
    for n in free:
        if runs and runs[-1][-1] == n - 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return tuple(
        Gap(
            rule.day_of_slot(season.premiere, run[0]),
            rule.day_of_slot(season.premiere, run[-1]),
            len(run),
            rule.name,
        )
        for run in runs
    )


def text_width(text: str) -> int:
    """How many terminal columns ``text`` takes (wide East Asian characters take two)."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
        for c in text
    )


def _pad(text: str, width: int) -> str:
    return text + " " * (width - text_width(text))


NO_NEWSLETTER = "No newsletter: add a [newsletter] table to show.toml to make issues."
COLUMNS = ("EP", "TITLE", "RELEASE ({zone})", "UTC", "STATUS", "ISSUE", "WHY")


def cells(entry: Entry, newsletter: bool) -> list[str]:
    """One entry's cells, in COLUMNS order."""
    issue = entry.issue.isoformat() if entry.issue else ("-" if newsletter else "")
    return [
        entry.code,
        entry.title,
        entry.local_text,
        entry.utc_text,
        entry.status,
        issue,
        entry.note,
    ]


def plain_text(table: Timetable) -> str:
    """The timetable as aligned plain text, for pipes and files."""
    show = table.show
    lines = [f"{show.title} · {show.timezone} · as of {table.as_of.isoformat()}"]
    header = [c.format(zone=show.timezone) for c in COLUMNS]
    if not table.newsletter:
        header[5] = ""
    for season in table.seasons:
        grid: list[list[str] | str] = []
        for row in season.rows():
            if isinstance(row, Gap):
                grid.append(row.text)
            else:
                grid.append(cells(row, table.newsletter))
        widths = [text_width(h) for h in header]
        for cells_ in grid:
            if isinstance(cells_, list):
                widths = [max(w, text_width(c)) for w, c in zip(widths, cells_, strict=True)]
        lines += ["", season.heading(show)]
        rows: list[list[str]] = [header]
        for item in grid:
            rows.append(item if isinstance(item, list) else ["", f"({item})"])
        for cells_ in rows:
            if len(cells_) == 2:
                lines.append(("  " + _pad("", widths[0]) + "  " + cells_[1]).rstrip())
            else:
                padded = [_pad(c, w) for c, w in zip(cells_, widths, strict=True) if w]
                lines.append(("  " + "  ".join(padded)).rstrip())
    if not table.newsletter:
        lines += ["", NO_NEWSLETTER]
    return "\n".join(lines) + "\n"
