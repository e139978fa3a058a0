"""The plan stage's fast paths give what the plain constructions give."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from click.testing import Result

from famfeeds.plan.issues import Issue, plan_issues
from famfeeds.plan.schedule import Release, build_schedule
from famfeeds.records.loader import load_catalogue
from support import Project, build_args


def test_releases_know_their_instant_as_a_plain_release_would(project: Project) -> None:
    """Timed, all-day and same-day releases: each release the schedule makes equals the
    Release built field by field, instant included (the second episode of a day a second
    after the first)."""
    project.show()
    project.season(
        1,
        premiere="2024-03-01",
        cadence="daily",
        extra="release_time = 21:00:00",
        episodes={1: {}, 2: {"release": "2024-03-01"}, 3: {"release": "2024-03-01T08:30:00"}},
    )
    project.season(2, premiere="2024-03-01", cadence="weekly", episodes=2)
    schedule = build_schedule(load_catalogue(project.content))
    zone = ZoneInfo("America/New_York")
    for release in schedule.releases:
        plain = replace(release)  # through __init__: its instant computed afresh
        assert release == plain
        assert release.instant == plain.instant
    instants = {r.key: r.instant for r in schedule.releases}
    assert instants["s01e01"] == datetime(2024, 3, 1, 21, 0, 0, tzinfo=zone)
    assert instants["s01e02"] == datetime(2024, 3, 1, 21, 0, 1, tzinfo=zone)
    assert instants["s01e03"] == datetime(2024, 3, 1, 8, 30, 2, tzinfo=zone)
    assert instants["s02e01"] == datetime(2024, 3, 1, 0, 0, 3, tzinfo=zone)


def test_an_issue_lists_a_days_releases_in_time_order(project: Project) -> None:
    project.show()
    project.season(
        1,
        premiere="2024-03-01",
        cadence="daily",
        extra="release_time = 21:00:00",
        episodes={1: {}, 2: {"release": "2024-03-01T08:30:00"}, 3: {}},
    )
    catalogue = load_catalogue(project.content)
    schedule = build_schedule(catalogue)
    issues, warnings = plan_issues(catalogue, schedule)
    assert warnings == []
    first = issues[1]
    assert first == Issue(
        catalogue.show,
        date(2024, 3, 1),
        first.releases,
        (),
        next(r for r in schedule.releases if r.key == "s01e03"),
        "",
    )
    assert [r.key for r in first.releases] == ["s01e02", "s01e01"]
    assert [i.day for i in issues] == [date(2024, 2, 23), date(2024, 3, 1), date(2024, 3, 2)]
    assert issues[0].previews == catalogue.seasons


def test_a_release_time_the_clocks_skip_is_a_warning(project: Project) -> None:
    """2024-03-10 02:30 does not exist in New York (the clocks go from 02:00 to 03:00)."""
    project.show()
    project.season(
        1, premiere="2024-03-09", cadence="daily", extra="release_time = 02:30:00", episodes=3
    )
    schedule = build_schedule(load_catalogue(project.content))
    assert [(w.record, w.field) for w in schedule.warnings] == [("S1 E2", "release_time")]
    assert "2024-03-10 02:30 does not exist in America/New_York" in schedule.warnings[0].message
    release = schedule.releases[1]
    assert release.local_time == time(2, 30)
    assert release.instant == replace(release).instant
    assert isinstance(release, Release)


def test_a_skipped_time_is_shown_as_the_clocks_read_at_its_instant(
    project: Project, run: Callable[..., Result]
) -> None:
    """02:30 on 2024-03-10 in New York names 07:30 UTC: the warning, the schedule, the page
    and the calendar all give that instant as 03:30 EDT, never as "2:30 AM EST"."""
    project.show()
    project.season(
        1, premiere="2024-03-09", cadence="daily", extra="release_time = 02:30:00", episodes=3
    )
    schedule = build_schedule(load_catalogue(project.content))
    assert "read as 03:30 EDT" in (schedule.warnings[0].hint or "")
    release = schedule.releases[1]
    utc = datetime(2024, 3, 10, 7, 30, tzinfo=UTC)
    assert (release.start, release.start.tzname()) == (utc, "EDT")
    assert release.instant == utc + timedelta(seconds=release.rank)
    table = run("schedule", "--content", project.content, "--as-of", "2024-03-01")
    assert "Sun 2024-03-10 03:30 EDT    2024-03-10 07:30" in table.output, table.output
    assert run(*build_args(project, "--as-of", "2024-03-01")).exit_code == 0
    page = (project.output / "index.html").read_text()
    assert "Mar 10, 2024, 3:30 AM EDT" in page.replace("\u202f", " ")
    assert "Mar 10, 2024, 2:30" not in page.replace("\u202f", " ")
    ics = (project.output / "episodes/s01e02.ics").read_text()
    assert "DTSTART:20240310T073000Z" in ics
