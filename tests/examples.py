"""The docs' worked examples of schedules, in one table: the tests build each one and
check its dates, and tests/regenerate_readme.py writes docs/content/release-dates.md's
section from the same rows,
so the two cannot drift apart.

Each example is a one-season show: a season.toml, episodes (only those with something to
say carry extra front matter), a reference date for the statuses, and what a reader should
see: release days, gaps, and words in the "why" column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SHOW = """\
title = {title}
slug = "{slug}"
base_url = "https://shows.example.net/{slug}/"
id_date = 2026-01-01
language = "en"
service = "Example+"
timezone = "{timezone}"
description = "A worked example from the famfeeds README."

[author]
name = "famfeeds examples"

[newsletter]
sender_name = "{slug} weekly"
sender_address = "news@shows.example.net"
unsubscribe_url = "https://shows.example.net/unsubscribe?token={{token}}"
"""


@dataclass(frozen=True)
class Example:
    """One worked example."""

    name: str
    heading: str
    story: str
    """What the example shows, for the docs page (Markdown)."""
    timezone: str
    season: str
    """season.toml, exactly as the docs page shows it."""
    count: int
    """How many episodes the season has."""
    as_of: str
    """The --as-of of the schedule shown."""
    front: dict[int, str] = field(default_factory=dict)
    """Extra front matter lines of some episodes, exactly as the docs page shows them."""
    days: dict[int, str] = field(default_factory=dict)
    """Release days a reader should see (episode number: YYYY-MM-DD)."""
    gaps: tuple[str, ...] = ()
    """The gap texts a reader should see."""
    why: dict[int, str] = field(default_factory=dict)
    """Words in an episode's "why" column."""

    @property
    def slug(self) -> str:
        """The example show's slug."""
        return self.name

    def episode_file(self, number: int) -> str:
        """The path of an episode file under content/."""
        return f"season-01/{number:02d}-episode-{number}.md"

    def files(self) -> dict[str, str]:
        """Every file of the example's content/ folder."""
        files = {
            "show.toml": SHOW.format(
                title=f'"{self.heading}"', slug=self.slug, timezone=self.timezone
            ),
            "season-01/season.toml": self.season,
        }
        for n in range(1, self.count + 1):
            extra = self.front.get(n, "")
            front = f'number = {n}\ntitle = "Episode {n}"\n{extra}'
            files[self.episode_file(n)] = f"+++\n{front.rstrip()}\n+++\n\nSynopsis of {n}.\n"
        return files

    def write(self, content: Path) -> Path:
        """Write the example into ``content`` and return it."""
        for name, text in self.files().items():
            path = content / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return content


EXAMPLES = (
    Example(
        name="week-off",
        heading="A week off",
        story=(
            "A Wednesday show takes Thanksgiving week off. Give the first episode after the "
            "break its date; the episodes after it follow weekly from there, and "
            "`famfeeds schedule` lists the empty week."
        ),
        timezone="America/New_York",
        season=(
            "number = 1\n"
            'title = "Season 1"\n'
            "premiere = 2026-11-04\n"
            'cadence = "weekly"\n'
            "release_time = 21:00:00\n"
        ),
        count=6,
        front={4: "release = 2026-12-02   # back after Thanksgiving week"},
        as_of="2026-11-20",
        days={3: "2026-11-18", 4: "2026-12-02", 5: "2026-12-09", 6: "2026-12-16"},
        gaps=("no episode on Wed 2026-11-25",),
        why={4: "from release = 2026-12-02", 5: "next weekly slot after E4"},
    ),
    Example(
        name="double-finale",
        heading="A double finale",
        story=(
            "The last two episodes come out on the same night. Give the finale the date of "
            "the episode before it: both are in the same newsletter issue, and the feeds "
            "list them one second apart, in episode order."
        ),
        timezone="America/New_York",
        season=(
            "number = 1\n"
            'title = "Season 1"\n'
            "premiere = 2027-01-08\n"
            'cadence = "weekly"\n'
            "release_time = 21:00:00\n"
        ),
        count=6,
        front={6: "release = 2027-02-05   # the same night as episode 5"},
        as_of="2027-02-01",
        days={5: "2027-02-05", 6: "2027-02-05"},
        why={5: "double bill with E6", 6: "double bill with E5"},
    ),
    Example(
        name="mid-season-break",
        heading="A mid-season break",
        story=(
            "Five episodes in the autumn, three more from January. Give episode 6 its date; "
            "the rhythm continues from it. The UTC column shows the clocks going back in "
            "October: the same 20:00 in London is 19:00 UTC before and 20:00 after."
        ),
        timezone="Europe/London",
        season=(
            "number = 1\n"
            'title = "Season 1"\n'
            "premiere = 2026-10-15\n"
            'cadence = "weekly"\n'
            "release_time = 20:00:00\n"
        ),
        count=8,
        front={6: "release = 2027-01-07   # back from the break"},
        as_of="2026-12-01",
        days={2: "2026-10-22", 3: "2026-10-29", 5: "2026-11-12", 6: "2027-01-07", 8: "2027-01-21"},
        gaps=("no episodes on 7 weekly slots, Thu 2026-11-19 to Thu 2026-12-31",),
        why={
            2: "20:00 BST 2026-10-22 19:00",
            3: "20:00 GMT 2026-10-29 20:00",
            6: "from release = 2027-01-07",
        },
    ),
    Example(
        name="thanksgiving-shift",
        heading="A holiday shift",
        story=(
            "A Thursday show moves the episode that would fall on Thanksgiving to the "
            "Wednesday before. The moved episode takes that Thursday's slot, so the next "
            "one is back on Thursday."
        ),
        timezone="America/Chicago",
        season=(
            "number = 1\n"
            'title = "Season 1"\n'
            "premiere = 2026-11-05\n"
            'cadence = "weekly"\n'
            "release_time = 19:00:00\n"
        ),
        count=6,
        front={4: "release = 2026-11-25   # the Wednesday before Thanksgiving"},
        as_of="2026-11-25",
        days={3: "2026-11-19", 4: "2026-11-25", 5: "2026-12-03"},
        why={4: "in the Thu 2026-11-26 slot", 5: "next weekly slot after E4"},
    ),
    Example(
        name="daily",
        heading="A daily show",
        story=(
            'A miniseries released every evening for a week: `cadence = "daily"` makes '
            "each slot one day after the last."
        ),
        timezone="Europe/Berlin",
        season=(
            "number = 1\n"
            'title = "Season 1"\n'
            "premiere = 2026-12-21\n"
            'cadence = "daily"\n'
            "release_time = 18:00:00\n"
        ),
        count=5,
        as_of="2026-12-23",
        days={1: "2026-12-21", 5: "2026-12-25"},
        why={2: "next daily slot after E1"},
    ),
    Example(
        name="all-at-once",
        heading="Every episode at once",
        story=(
            "A streaming service releases the whole season at midnight Pacific time: "
            '`cadence = "all-at-once"` puts every episode on the premiere, in one '
            "newsletter issue; that is 08:00 UTC."
        ),
        timezone="America/Los_Angeles",
        season=(
            "number = 1\n"
            'title = "Season 1"\n'
            "premiere = 2026-11-06\n"
            'cadence = "all-at-once"\n'
            "release_time = 00:00:00\n"
        ),
        count=6,
        as_of="2026-11-06",
        days={1: "2026-11-06", 6: "2026-11-06"},
        why={2: "all at once, on the premiere"},
    ),
)
