"""famfeeds schedule: every date with its reason, as a table, plain text and JSON; and the
warnings for time zones that are valid but wrong for a show."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zoneinfo
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from famfeeds.build.pipeline import check
from famfeeds.cli.authoring import print_rich
from famfeeds.plan.timetable import Entry, Gap, plain_text, timetable
from famfeeds.records.models import CADENCES
from famfeeds.records.zones import places, zone_advice
from support import Project

NEWSLETTER = """
[newsletter]
sender_name = "Test weekly"
sender_address = "news@shows.example.net"
unsubscribe_url = "https://shows.example.net/unsubscribe?token={token}"
"""


def thanksgiving(project: Project, newsletter: bool = True) -> None:
    """Wednesdays 21:00 in New York from 2026-10-28 (before the clocks change on 11-01): a
    week off at Thanksgiving, a cancelled episode, and a two-episode finale."""
    project.show("America/New_York")
    if newsletter:
        show = project.content / "show.toml"
        show.write_text(show.read_text(encoding="utf-8") + NEWSLETTER, encoding="utf-8")
    project.season(
        premiere="2026-10-28",
        extra="release_time = 21:00:00",
        episodes={
            1: {},
            2: {},
            3: {},
            4: {},
            5: {"release": "2026-12-02"},  # no episode on 2026-11-25
            6: {"status": '"cancelled"'},
            7: {},
            8: {"release": "2026-12-16"},  # with episode 7
        },
    )


def rows(output: str) -> dict[str, str]:
    """Plain-text rows by episode code, spaces collapsed."""
    found = {}
    for line in output.splitlines():
        match = re.match(r"^  (S\d+ E\d+) ", line)
        if match:
            found[match.group(1)] = " ".join(line.split())
    return found


def test_the_plain_table_says_when_and_why(project: Project, run: Callable[..., Result]) -> None:
    thanksgiving(project)
    result = run("schedule", "--content", project.content, "--as-of", "2026-11-12")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("Test Show · America/New_York · as of 2026-11-12\n")
    assert (
        "Season 1 · new episodes on Wednesdays at 21:00 · premiere Wed 2026-10-28 · "
        "newsletter preview 2026-10-21"
    ) in out
    table = rows(out)
    assert table["S1 E1"] == (
        "S1 E1 Episode 1 Wed 2026-10-28 21:00 EDT 2026-10-29 01:00 released 2026-10-28 the premiere"
    )
    assert table["S1 E2"] == (
        "S1 E2 Episode 2 Wed 2026-11-04 21:00 EST 2026-11-05 02:00 released 2026-11-04 "
        "next weekly slot after E1"
    )
    assert table["S1 E3"].endswith("released 2026-11-11 next weekly slot after E2")
    assert table["S1 E4"].endswith("next 2026-11-18 next weekly slot after E3")
    assert "upcoming 2026-12-02 from release = 2026-12-02" in table["S1 E5"]
    assert "cancelled - next weekly slot after E5" in table["S1 E6"]
    assert table["S1 E7"].endswith("2026-12-16 next weekly slot after E6; double bill with E8")
    assert table["S1 E8"].endswith("2026-12-16 from release = 2026-12-16; double bill with E7")
    lines = out.splitlines()
    gap = lines.index(next(line for line in lines if "no episode" in line))
    assert "(no episode on Wed 2026-11-25)" in lines[gap]
    assert "S1 E4" in lines[gap - 1] and "S1 E5" in lines[gap + 1]
    # Columns line up: every date starts where the header's RELEASE does.
    header = next(line for line in lines if "RELEASE" in line)
    column = header.index("RELEASE")
    for line in lines:
        if re.match(r"^  S1 E\d ", line):
            assert line[column : column + 4] in ("Wed ", "Thu "), line


def test_json_for_scripts(project: Project, run: Callable[..., Result]) -> None:
    thanksgiving(project)
    result = run("schedule", "--content", project.content, "--as-of", "2026-11-12", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert (data["show"], data["timezone"], data["as_of"]) == (
        "Test Show",
        "America/New_York",
        "2026-11-12",
    )
    (season,) = data["seasons"]
    assert season["preview_issue"] == "2026-10-21"
    assert season["gaps"] == [
        {
            "first": "2026-11-25",
            "last": "2026-11-25",
            "slots": 1,
            "text": "no episode on Wed 2026-11-25",
        }
    ]
    by_key = {e["key"]: e for e in season["episodes"]}
    assert by_key["s01e01"] == {
        "season": 1,
        "episode": 1,
        "key": "s01e01",
        "title": "Episode 1",
        "date": "2026-10-28",
        "weekday": "Wednesday",
        "time": "21:00",
        "zone": "EDT",
        "utc": "2026-10-29T01:00:00Z",
        "all_day": False,
        "status": "released",
        "issue": "2026-10-28",
        "same_day": [],
        "reason": "the premiere",
        "file": by_key["s01e01"]["file"],
    }
    assert by_key["s01e01"]["file"].endswith("season-01/01-episode-1.md")
    assert by_key["s01e06"]["status"] == "cancelled" and by_key["s01e06"]["issue"] is None
    assert by_key["s01e07"]["same_day"] == ["s01e08"]
    assert [e["status"] for e in season["episodes"]].count("next") == 1


def test_statuses_follow_the_reference_date(project: Project, run: Callable[..., Result]) -> None:
    thanksgiving(project)
    for as_of, expected in (
        ("2026-10-01", ["next"] + ["upcoming"] * 4 + ["cancelled"] + ["upcoming"] * 2),
        ("2026-12-02", ["released"] * 5 + ["cancelled", "next", "upcoming"]),
        ("2027-01-01", ["released"] * 5 + ["cancelled"] + ["released"] * 2),
    ):
        data = json.loads(
            run("schedule", "--content", project.content, "--as-of", as_of, "--json").output
        )
        assert [e["status"] for e in data["seasons"][0]["episodes"]] == expected, as_of


def test_without_a_newsletter_there_is_no_issue_column(
    project: Project, run: Callable[..., Result]
) -> None:
    thanksgiving(project, newsletter=False)
    out = run("schedule", "--content", project.content, "--as-of", "2026-11-12").output
    assert "ISSUE" not in out and "preview" not in out
    assert "No newsletter: add a [newsletter] table to show.toml" in out
    assert rows(out)["S1 E2"].endswith("released next weekly slot after E1")


def test_season_filter_and_the_premiere_slot_shared(
    project: Project, run: Callable[..., Result]
) -> None:
    project.show("Europe/Berlin")
    project.season(1, premiere="2026-03-06", episodes=2)
    project.season(
        2,
        premiere="2027-03-05",
        cadence="biweekly",
        episodes={1: {}, 2: {"release": "2027-03-05"}, 3: {}, 4: {"release": "2027-04-01"}},
    )
    out = run(
        "schedule", "--content", project.content, "--season", "2", "--as-of", "2027-01-01"
    ).output
    table = rows(out)
    assert sorted(table) == ["S2 E1", "S2 E2", "S2 E3", "S2 E4"]
    assert "Fri 2027-03-05 all day - next the premiere; double bill with E2" in table["S2 E1"]
    assert (
        "from release = 2027-03-05; shares the premiere's slot; double bill with E1"
        in (table["S2 E2"])
    )
    assert "Fri 2027-03-19 all day" in table["S2 E3"]
    assert "next biweekly slot after E2" in table["S2 E3"]
    # 2027-04-01 is a Thursday: it takes the Friday 04-02 slot.
    assert "from release = 2027-04-01, in the Fri 2027-04-02 slot" in table["S2 E4"]
    missing = run("schedule", "--content", project.content, "--season", "3")
    assert missing.exit_code == 1
    assert "there is no season 3; seasons: 1, 2" in missing.output


def test_errors_in_the_content_are_reported_not_tabled(
    project: Project, run: Callable[..., Result]
) -> None:
    project.show()
    project.season(episodes={1: {}, 2: {"release": "2024-02-30"}})
    result = run("schedule", "--content", project.content)
    assert result.exit_code == 1
    assert "2024-02-30 is not a valid date" in result.output
    assert "Traceback" not in result.output


def test_the_rich_table_fits_a_terminal(project: Project) -> None:
    thanksgiving(project)
    (project.content / "season-01/03-episode-3.md").write_text(
        '+++\nnumber = 3\ntitle = "[bold]Not markup[/bold] and a much longer title than most"\n'
        "+++\n",
        encoding="utf-8",
    )
    planned = check(project.content)
    console = Console(record=True, width=120, force_terminal=True, color_system=None)
    print_rich(timetable(planned, date(2026, 11, 12)), console)
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 120
    assert "Test Show · times in America/New_York and UTC · as of 2026-11-12" in text
    assert "[bold]Not" in text and "markup[/bold]" in text
    header = lines.index(next(line for line in lines if line.lstrip().startswith("Ep ")))
    assert lines[header - 1].split() == ["Release"]
    assert lines[header].split() == [
        "Ep",
        "Title",
        "(America/New_York)",
        "UTC",
        "Status",
        "Issue",
        "Why",
    ]
    e2 = " ".join(next(line for line in lines if line.lstrip().startswith("S1 E2 ")).split())
    assert e2 == (
        "S1 E2 Episode 2 Wed 2026-11-04 21:00 EST 11-05 02:00 released 2026-11-04 "
        "next weekly slot after E1"
    )
    gap = " ".join(next(line for line in lines if "no episode" in line).split())
    assert gap == "no episode Wed 2026-11-25"


def test_the_table_in_a_real_terminal(project: Project, tmp_path: Path) -> None:
    """What a person sees: ``famfeeds schedule`` in a 120x40 tmux pane."""
    tmux = shutil.which("tmux")
    assert tmux, "tmux is needed for this test (.ci/run installs it)"
    thanksgiving(project)
    socket = f"famfeeds-test-{os.getpid()}"
    command = (
        f"{shlex.quote(sys.executable)} -m famfeeds schedule --content "
        f"{shlex.quote(str(project.content))} --as-of 2026-11-12; "
        f"{tmux} -L {socket} wait-for -S done; sleep 60"
    )
    # The pane tells its own size: pytest-xdist's workers set COLUMNS=80 and LINES=24.
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    try:
        subprocess.run(
            [
                tmux,
                "-L",
                socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "120",
                "-y",
                "40",
                command,
            ],
            check=True,
            env=env,
        )
        subprocess.run([tmux, "-L", socket, "wait-for", "done"], check=True, timeout=120)
        pane = subprocess.run(
            [tmux, "-L", socket, "capture-pane", "-p"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        subprocess.run([tmux, "-L", socket, "kill-server"], capture_output=True)
    lines = [line.rstrip() for line in pane.splitlines()]
    assert "Test Show · times in America/New_York and UTC · as of 2026-11-12" in lines[0]
    assert any(line.lstrip().startswith("Ep ") and "Why" in line for line in lines)
    assert any(set(line.strip()) == {"─"} for line in lines)  # rich's header rule
    found = {line.split()[1]: " ".join(line.split()) for line in lines if line.startswith("S1 ")}
    assert sorted(found) == [f"E{n}" for n in range(1, 9)]
    assert "Wed 2026-11-04 21:00 EST 11-05 02:00 released" in found["E2"]
    assert "next 2026-11-18" in found["E4"]
    assert "no episode Wed 2026-11-25" in " ".join(" ".join(lines).split())
    assert all(len(line) <= 120 for line in lines)


# The reasons agree with the schedule ------------------------------------------------------


@st.composite
def seasons(draw: st.DrawFn) -> tuple[str, date, dict[int, dict[str, str]]]:
    cadence = draw(st.sampled_from(["weekly", "daily", "biweekly"]))
    premiere = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 365)))
    count = draw(st.integers(1, 8))
    episodes: dict[int, dict[str, str]] = {}
    for n in range(1, count + 1):
        if draw(st.booleans()):
            offset = draw(st.integers(-3, 90))
            episodes[n] = {"release": (premiere + timedelta(days=offset)).isoformat()}
        else:
            episodes[n] = {}
    return cadence, premiere, episodes


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=seasons())
def test_every_reason_and_gap_matches_the_schedule(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[str, date, dict[int, dict[str, str]]]
) -> None:
    cadence, premiere, episodes = case
    project = Project(tmp_path_factory.mktemp("p"))
    project.show()
    project.season(premiere=premiere.isoformat(), cadence=cadence, episodes=episodes)
    planned = check(project.content)
    (table,) = timetable(planned, premiere).seasons
    rule = CADENCES[cadence]
    step = rule.step
    day_of = {e.release.episode.number: e.release.day for e in table.entries}
    for entry in table.entries:
        why = entry.reason
        if why == "the premiere":
            assert entry.release.day == premiere
        elif why.startswith("next "):
            previous = int(why.rsplit("E", 1)[1])
            slot = rule.slot_of_day(premiere, day_of[previous]) + 1
            assert entry.release.day == rule.day_of_slot(premiere, slot)
        else:
            assert why.startswith(f"from release = {entry.release.day.isoformat()}")
    release_days = set(day_of.values())
    grid = {premiere + timedelta(days=step * k) for k in range(-10, 200)}
    for gap in table.gaps:
        assert gap.first in grid and gap.last in grid
        days = {gap.first + timedelta(days=step * k) for k in range(gap.slots)}
        assert gap.last in days and not days & release_days
    # Between the premiere and the last release, every slot has an episode or a gap.
    slot_days = {d for d in grid if premiere <= d <= max(release_days)}
    covered = {gap.first + timedelta(days=step * k) for gap in table.gaps for k in range(gap.slots)}
    taken = {rule.day_of_slot(premiere, rule.slot_of_day(premiere, d)) for d in release_days}
    assert slot_days <= covered | taken


def test_rows_place_each_gap_before_the_next_episode(project: Project) -> None:
    thanksgiving(project)
    (season,) = timetable(check(project.content), date(2026, 11, 12)).seasons
    kinds = [
        row.release.episode.number if isinstance(row, Entry) else "gap" for row in season.rows()
    ]
    assert kinds == [1, 2, 3, 4, "gap", 5, 6, 7, 8]
    assert isinstance(season.rows()[4], Gap)
    text = plain_text(timetable(check(project.content), date(2026, 11, 12)))
    assert text.endswith("\n") and not text.endswith("\n\n")


# Time zones that are valid but wrong --------------------------------------------------------


@pytest.mark.parametrize(
    "zone,message,suggestion",
    [
        ("EST", "'EST' is a fixed UTC-05:00 zone without daylight-saving time", "America/New_York"),
        ("MST", "'MST' is a fixed UTC-07:00 zone", "America/Phoenix"),
        ("HST", "'HST' is a legacy zone name", "Pacific/Honolulu"),
        ("EST5EDT", "'EST5EDT' is a legacy zone name", "America/New_York"),
        (
            "Etc/GMT+5",
            "'Etc/GMT+5' is a fixed UTC-05:00 zone (its sign is inverted",
            "America/New_York",
        ),
        ("Etc/GMT-9", "'Etc/GMT-9' is a fixed UTC+09:00 zone", "Asia/Tokyo"),
        ("GMT", "'GMT' is a fixed UTC+00:00 zone", "Europe/London"),
        ("US/Eastern", "'US/Eastern' is an old alias of 'America/New_York'", "America/New_York"),
        ("Asia/Calcutta", "old alias of 'Asia/Kolkata'", "Asia/Kolkata"),
        ("Zulu", "'Zulu' is an old name of UTC", "UTC"),
    ],
)
def test_zone_warnings_name_the_city_zone(
    project: Project, run: Callable[..., Result], zone: str, message: str, suggestion: str
) -> None:
    project.show(zone)
    project.season()
    checked = run("check", "--content", project.content)
    assert checked.exit_code == 0
    warning = next(line for line in checked.output.splitlines() if line.startswith("warning:"))
    assert warning.startswith("warning: content/show.toml:7: show, field 'timezone': ") or (
        f"{project.content}/show.toml:7: show, field 'timezone'" in warning
    )
    assert message in warning
    assert f"'{suggestion}'" in warning or f'"{suggestion}"' in warning
    strict = run("check", "--content", project.content, "--strict")
    assert strict.exit_code == 1
    assert "warnings treated as errors (--strict)" in strict.output and message in strict.output
    table = run("schedule", "--content", project.content)
    assert table.exit_code == 0 and message in table.output


@pytest.mark.parametrize(
    "zone",
    [
        "America/New_York",
        "Europe/Amsterdam",
        "UTC",
        "Etc/UTC",
        "Asia/Kolkata",
        "America/Argentina/Buenos_Aires",
    ],
)
def test_city_zones_and_utc_get_no_warning(
    project: Project, run: Callable[..., Result], zone: str
) -> None:
    project.show(zone)
    project.season()
    assert run("check", "--content", project.content, "--strict").exit_code == 0


def test_every_suggested_zone_is_a_city_zone_that_needs_no_advice() -> None:
    advised = 0
    for name in sorted(zoneinfo.available_timezones()):
        advice = zone_advice(name)
        if name in places() or name in ("UTC", "Etc/UTC"):
            assert advice is None, name
            continue
        if name in ("localtime", "Factory") or name.startswith("posix") or name.startswith("right"):
            continue
        assert advice is not None, name
        advised += 1
        for suggested in re.findall(r"'([^']+)'|\"([^\"]+)\"", advice[1]):
            zone = next(s for s in suggested if s)
            assert zone_advice(zone) is None, (name, zone)
            zoneinfo.ZoneInfo(zone)
    assert advised > 100


def test_a_narrow_terminal_gets_the_essential_columns(project: Project) -> None:
    thanksgiving(project)
    console = Console(record=True, width=80, force_terminal=True, color_system=None)
    print_rich(timetable(check(project.content), date(2026, 11, 12)), console)
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if line.startswith("Ep "))
    assert header.split() == ["Ep", "Title", "(America/New_York)", "Status", "Why"]
    e4 = next(line for line in lines if line.startswith("S1 E4 "))
    assert " ".join(e4.split()).startswith("S1 E4 Episode 4 Wed 2026-11-18 21:00 EST next")
