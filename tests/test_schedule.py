"""The release rule's corners, checked through loaded content and the schedule."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from famfeeds.build.pipeline import check
from famfeeds.errors import ContentError
from support import Project


def days(project: Project) -> dict[int, date]:
    schedule = check(project.content).schedule
    return {r.episode.number: r.day for r in schedule.releases}


def test_plain_weekly_season_needs_only_a_premiere(project: Project) -> None:
    project.show()
    project.season(premiere="2024-01-05", episodes=4)
    assert days(project) == {
        1: date(2024, 1, 5),
        2: date(2024, 1, 12),
        3: date(2024, 1, 19),
        4: date(2024, 1, 26),
    }


def test_multi_episode_premiere_counts_release_days_not_episodes(project: Project) -> None:
    project.show()
    project.season(
        premiere="2024-01-05",
        episodes={1: {}, 2: {"release": "2024-01-05"}, 3: {"release": "2024-01-05"}, 4: {}, 5: {}},
    )
    assert days(project) == {
        1: date(2024, 1, 5),
        2: date(2024, 1, 5),
        3: date(2024, 1, 5),
        4: date(2024, 1, 12),
        5: date(2024, 1, 19),
    }


def test_holiday_shift_moves_one_release_and_keeps_the_rhythm(project: Project) -> None:
    project.show()
    # Episode 3 would fall on Friday 2024-01-19; it comes out a day early.
    project.season(
        premiere="2024-01-05", episodes={1: {}, 2: {}, 3: {"release": "2024-01-18"}, 4: {}, 5: {}}
    )
    assert days(project) == {
        1: date(2024, 1, 5),
        2: date(2024, 1, 12),
        3: date(2024, 1, 18),
        4: date(2024, 1, 26),
        5: date(2024, 2, 2),
    }


def test_a_hiatus_restarts_the_rhythm_from_the_explicit_date(project: Project) -> None:
    project.show()
    project.season(
        premiere="2024-01-05", episodes={1: {}, 2: {}, 3: {"release": "2024-02-09"}, 4: {}}
    )
    assert days(project)[3] == date(2024, 2, 9)
    assert days(project)[4] == date(2024, 2, 16)


def test_all_at_once_and_daily_cadences(project: Project) -> None:
    project.show()
    project.season(number=1, premiere="2024-03-01", cadence="all-at-once", episodes=3)
    project.season(number=2, premiere="2024-04-01", cadence="daily", episodes=3)
    schedule = check(project.content).schedule
    got = {(r.season.number, r.episode.number): r.day for r in schedule.releases}
    assert got[1, 1] == got[1, 2] == got[1, 3] == date(2024, 3, 1)
    assert [got[2, n] for n in (1, 2, 3)] == [date(2024, 4, 1), date(2024, 4, 2), date(2024, 4, 3)]


def test_episodes_on_one_day_get_distinct_instants_in_episode_order(project: Project) -> None:
    project.show()
    project.season(premiere="2024-01-05", cadence="all-at-once", episodes=3)
    schedule = check(project.content).schedule
    instants = [r.instant for r in schedule.releases]
    assert instants == sorted(instants)
    assert len(set(instants)) == 3


def test_release_time_applies_in_the_show_time_zone(project: Project) -> None:
    project.show(timezone="America/Los_Angeles")
    project.season(premiere="2024-01-05", extra="release_time = 21:00:00", episodes=1)
    (release,) = check(project.content).schedule.releases
    assert not release.all_day
    assert release.instant.astimezone(UTC) == datetime(2024, 1, 6, 5, 0, tzinfo=UTC)


def test_utc_datetime_near_midnight_lands_on_the_local_day(project: Project) -> None:
    # 02:00 UTC on the 6th is 18:00 on the 5th in Los Angeles: the release day is the 5th.
    project.show(timezone="America/Los_Angeles")
    project.season(premiere="2024-01-05", episodes={1: {"release": "2024-01-06T02:00:00Z"}, 2: {}})
    schedule = check(project.content).schedule
    first, second = schedule.releases
    assert first.day == date(2024, 1, 5)
    assert first.local_time == time(18, 0)
    assert second.day == date(2024, 1, 12)


def test_local_datetime_at_23_59_stays_on_its_day(project: Project) -> None:
    project.show(timezone="Europe/Berlin")
    project.season(premiere="2024-01-05", episodes={1: {"release": "2024-01-05T23:59:00"}})
    (release,) = check(project.content).schedule.releases
    assert release.day == date(2024, 1, 5)
    assert release.instant.astimezone(UTC) == datetime(2024, 1, 5, 22, 59, tzinfo=UTC)


def test_release_time_in_a_daylight_saving_gap_is_a_warning(project: Project) -> None:
    project.show(timezone="America/New_York")
    project.season(premiere="2024-03-10", extra='release_time = "02:30"', episodes=1)
    schedule = check(project.content).schedule
    assert any("does not exist" in w.message for w in schedule.warnings)


def test_an_episode_dated_before_its_predecessor_is_a_warning(project: Project) -> None:
    project.show()
    project.season(premiere="2024-01-05", episodes={1: {}, 2: {"release": "2024-01-01"}})
    schedule = check(project.content).schedule
    (warning,) = schedule.warnings
    assert warning.field == "release"
    assert "02-episode-2.md" in warning.file


SURPRISES = {
    "earlier than the previous episode": (
        {1: {}, 2: {}, 3: {"release": "2024-01-08"}, 4: {}, 5: {}},
        3,
        "E3 is released 2024-01-08, before E2 (2024-01-12); "
        "so E3 → 2024-01-08, E4 → 2024-01-12, E5 → 2024-01-19",
    ),
    "a gap of more than 8 steps": (
        {1: {}, 2: {"release": "2024-03-15"}, 3: {}},
        2,
        "E2 is released 2024-03-15, 70 days after E1 (2024-01-05), more than 8 steps of the "
        "weekly cadence (56 days); so E2 → 2024-03-15, E3 → 2024-03-22",
    ),
    "a year typo": (
        {1: {}, 2: {}, 3: {"release": "2025-01-19"}, 4: {}, 5: {}, 6: {}, 7: {}, 8: {}},
        3,
        "E3 is released 2025-01-19, 373 days after E2 (2024-01-12), more than 8 steps of the "
        "weekly cadence (56 days) and more than a year after the season's premiere "
        "(2024-01-05); so E3 → 2025-01-19, E4 → 2025-01-24, E5 → 2025-01-31, "
        "E6 → 2025-02-07 …",
    ),
    "a finale before the premiere": (
        {1: {"release": "2024-01-05"}, 2: {"release": "2023-12-29"}},
        2,
        "the finale is released 2023-12-29, before E1 (2024-01-05) and before the season's "
        "premiere (2024-01-05); so E2 → 2023-12-29",
    ),
    "a premiere episode more than a year early": (
        {1: {"release": "2022-11-04"}, 2: {}},
        1,
        "E1 is released 2022-11-04, more than a year before the season's premiere "
        "(2024-01-05); so E1 → 2022-11-04, E2 → 2022-11-11",
    ),
}


@pytest.mark.parametrize("case", list(SURPRISES))
def test_surprising_dates_are_warnings_naming_file_line_field_and_the_dates(
    project: Project, case: str
) -> None:
    episodes, number, message = SURPRISES[case]
    project.show()
    project.season(premiere="2024-01-05", episodes=episodes)
    (warning,) = check(project.content).warnings
    assert warning.file.endswith(f"season-01/{number:02d}-episode-{number}.md")
    assert warning.line == 4  # +++, number, title, release
    assert warning.field == "release"
    assert warning.record == f"S1 E{number}"
    assert warning.message == message


def test_a_checked_date_is_not_a_warning(project: Project) -> None:
    """A long break that is meant: the editor says so once, and --strict passes."""
    project.show()
    checked = {"release": "2024-09-06", "date_checked": "true"}
    project.season(premiere="2024-01-05", episodes={1: {}, 2: {}, 3: checked, 4: {}})
    planned = check(project.content, strict=True)
    assert planned.warnings == ()
    assert [r.day for r in planned.schedule.releases][2:] == [date(2024, 9, 6), date(2024, 9, 13)]


def test_strict_refuses_a_surprising_date(project: Project) -> None:
    project.show()
    project.season(premiere="2024-01-05", episodes={1: {}, 2: {"release": "2034-01-12"}})
    with pytest.raises(ContentError, match="warnings treated as errors"):
        check(project.content, strict=True)


@pytest.mark.parametrize(
    ("cadence", "count"), [("weekly", 60), ("daily", 400), ("biweekly", 30), ("all-at-once", 9)]
)
def test_long_regular_seasons_and_normal_shifts_are_not_warnings(
    project: Project, cadence: str, count: int
) -> None:
    project.show()
    episodes: dict[int, dict[str, str]] = {n: {} for n in range(1, count + 1)}
    if cadence == "weekly":
        episodes[3] = {"release": "2024-01-18"}  # a holiday shift, a day early
        episodes[10] = {"release": "2024-04-05"}  # a break of seven weeks
    project.season(premiere="2024-01-05", cadence=cadence, episodes=episodes)
    planned = check(project.content, strict=True)
    assert planned.warnings == ()
    assert len(planned.schedule.releases) == count


def test_the_shipped_season_has_no_warnings(shipped: Project) -> None:
    assert check(shipped.content, strict=True).warnings == ()


def test_shipped_season_is_ten_fridays(shipped: Project) -> None:
    got = days(shipped)
    assert got[1] == date(2023, 11, 10)
    assert got[10] == date(2024, 1, 12)
    assert all(d.weekday() == 4 for d in got.values())
    assert len(set(got.values())) == 10
