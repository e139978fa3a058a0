"""The calendars as calendar apps see them: read back with icalendar and vobject."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import icalendar
import pytest
import vobject
from click.testing import Result
from hypothesis import example, given, settings
from hypothesis import strategies as st

from support import Project, build_args

UID = "for-all-mankind-s04e{:02d}@famfeeds.example.org"


def events_icalendar(path: Path) -> dict[str, dict[str, object]]:
    cal = icalendar.Calendar.from_ical(path.read_bytes())
    out = {}
    for ev in cal.walk("VEVENT"):
        start = ev.decoded("dtstart")
        out[str(ev["uid"])] = {
            "summary": str(ev["summary"]),
            "all_day": not isinstance(start, datetime),
            "start": start.astimezone(UTC) if isinstance(start, datetime) else start,
            "sequence": int(ev.get("sequence", 0)),
            "status": str(ev.get("status", "")),
            "description": str(ev.get("description", "")),
        }
    return out


def events_vobject(path: Path) -> dict[str, dict[str, object]]:
    cal = vobject.readOne(path.read_text(encoding="utf-8"))
    out = {}
    for ev in cal.vevent_list:
        start = ev.dtstart.value
        out[ev.uid.value] = {
            "summary": ev.summary.value,
            "all_day": not isinstance(start, datetime),
            "start": start.astimezone(UTC) if isinstance(start, datetime) else start,
            "sequence": int(ev.sequence.value),
            "status": ev.status.value,
            "description": ev.description.value if hasattr(ev, "description") else "",
        }
    return out


def event_blocks(path: Path) -> dict[str, bytes]:
    """The raw bytes of each VEVENT, by UID."""
    data = path.read_bytes()
    blocks = re.findall(rb"BEGIN:VEVENT\r\n.*?END:VEVENT\r\n", data, re.S)
    return {re.search(rb"\r\nUID:(.*?)\r\n", b).group(1).decode(): b for b in blocks}


@pytest.fixture
def built(shipped: Project, run: Callable[..., Result]) -> Project:
    assert run(*build_args(shipped, "--as-of", "2023-11-24")).exit_code == 0
    return shipped


def test_shipped_calendar_has_ten_all_day_fridays(built: Project) -> None:
    path = built.output / "calendar.ics"
    via_icalendar = events_icalendar(path)
    via_vobject = events_vobject(path)
    assert via_icalendar == via_vobject
    assert sorted(via_icalendar) == [UID.format(n) for n in range(1, 11)]
    starts = [via_icalendar[UID.format(n)]["start"] for n in range(1, 11)]
    assert starts == [date(2023, 11, 10) + timedelta(weeks=n) for n in range(10)]
    assert starts[-1] == date(2024, 1, 12)
    assert all(e["all_day"] for e in via_icalendar.values())
    assert via_icalendar[UID.format(3)]["summary"] == "For All Mankind S4 E3: The Bear Hug"
    assert "https://famfeeds.example.org/for-all-mankind/s04/e03/" in str(
        via_icalendar[UID.format(3)]["description"]
    )
    # The as-of date does not filter a calendar: future episodes are there too.
    assert via_icalendar[UID.format(10)]["status"] == "CONFIRMED"


def test_calendar_properties_and_format(built: Project) -> None:
    raw = (built.output / "calendar.ics").read_bytes()
    cal = icalendar.Calendar.from_ical(raw)
    assert str(cal["version"]) == "2.0"
    assert str(cal["prodid"]).startswith("-//famfeeds")
    assert str(cal["x-wr-calname"]) == str(cal["name"]) == "For All Mankind"
    assert str(cal["x-wr-caldesc"])
    assert cal["refresh-interval"].to_ical() == b"PT12H"
    assert str(cal["x-published-ttl"]) == "PT12H"
    assert b"METHOD:" not in raw
    assert raw.count(b"\r\n") == raw.count(b"\n")
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    ev = cal.walk("VEVENT")[0]
    assert ev.decoded("dtend") - ev.decoded("dtstart") == timedelta(days=1)
    assert str(ev["location"]) == "Apple TV+"
    assert ev["dtstamp"].dt.tzinfo is not None
    assert ev.get("transp") == "TRANSPARENT"


def test_season_and_episode_files(built: Project) -> None:
    season = events_icalendar(built.output / "season-04.ics")
    assert season == events_icalendar(built.output / "calendar.ics")
    one = events_icalendar(built.output / "episodes/s04e03.ics")
    assert list(one) == [UID.format(3)]
    assert (
        event_blocks(built.output / "episodes/s04e03.ics")[UID.format(3)]
        == event_blocks(built.output / "calendar.ics")[UID.format(3)]
    )


def test_rebuild_is_byte_identical(built: Project, run: Callable[..., Result]) -> None:
    before = built.snapshot()
    lock = (built.root / "famfeeds.lock").read_bytes()
    assert run(*build_args(built, "--as-of", "2023-12-20")).exit_code == 0
    after = built.snapshot()
    for name in ("calendar.ics", "season-04.ics", "episodes/s04e07.ics"):
        assert after[name] == before[name]
    assert (built.root / "famfeeds.lock").read_bytes() == lock


def move(project: Project, relative: str, release: str) -> None:
    path = project.content / relative
    path.write_text(path.read_text().replace("+++\n\n", f"release = {release}\n+++\n\n", 1))


def test_moving_one_date_raises_that_sequence_and_nothing_else(
    built: Project, run: Callable[..., Result]
) -> None:
    before = event_blocks(built.output / "calendar.ics")
    move(built, "season-04/05-goldilocks.md", "2023-12-07")  # a day early
    assert run(*build_args(built, "--as-of", "2023-11-30")).exit_code == 0
    after = event_blocks(built.output / "calendar.ics")
    changed = sorted(uid for uid in before if before[uid] != after[uid])
    assert changed == [UID.format(5)]
    events = events_icalendar(built.output / "calendar.ics")
    assert events[UID.format(5)]["sequence"] == 1
    assert events[UID.format(5)]["start"] == date(2023, 12, 7)
    assert events[UID.format(6)]["start"] == date(2023, 12, 15)  # the rhythm holds
    assert events_vobject(built.output / "calendar.ics") == events
    # And building again changes nothing more.
    again = built.snapshot()
    assert run(*build_args(built, "--as-of", "2023-11-30")).exit_code == 0
    assert built.snapshot() == again


def test_a_synopsis_edit_updates_dtstamp_but_not_sequence(
    built: Project, run: Callable[..., Result]
) -> None:
    path = built.content / "season-04/02-have-a-nice-sol.md"
    path.write_text(path.read_text().replace("daily grind", "everyday grind"))
    assert run(*build_args(built, "--as-of", "2023-12-01")).exit_code == 0
    cal = icalendar.Calendar.from_ical((built.output / "calendar.ics").read_bytes())
    ev = next(e for e in cal.walk("VEVENT") if str(e["uid"]) == UID.format(2))
    assert int(ev["sequence"]) == 0
    assert ev.decoded("dtstamp") == datetime(2023, 12, 1, 8, tzinfo=UTC)
    assert "everyday grind" in str(ev["description"])


def test_cancelled_and_removed_episodes_stay_as_cancelled(
    built: Project, run: Callable[..., Result]
) -> None:
    path = built.content / "season-04/09-brazil.md"
    path.write_text(path.read_text().replace("+++\n\n", 'status = "cancelled"\n+++\n\n', 1))
    assert run(*build_args(built, "--as-of", "2023-12-01")).exit_code == 0
    events = events_icalendar(built.output / "calendar.ics")
    assert events[UID.format(9)]["status"] == "CANCELLED"
    assert events[UID.format(9)]["sequence"] == 1
    assert events[UID.format(10)]["start"] == date(2024, 1, 12)
    (built.content / "season-04/10-perestroika.md").unlink()
    assert run(*build_args(built, "--as-of", "2023-12-02")).exit_code == 0
    events = events_icalendar(built.output / "calendar.ics")
    assert events[UID.format(10)]["status"] == "CANCELLED"
    assert events[UID.format(10)]["sequence"] == 1
    assert events[UID.format(10)]["start"] == date(2024, 1, 12)
    assert events[UID.format(10)]["summary"] == "For All Mankind S4 E10: Perestroika"
    assert UID.format(10) in events_icalendar(built.output / "season-04.ics")
    assert events_vobject(built.output / "calendar.ics") == events


def test_timed_releases_across_a_dst_change_read_right_everywhere(
    project: Project, run: Callable[..., Result]
) -> None:
    # New York leaves daylight saving on 2024-11-03: 21:00 is 01:00Z before, 02:00Z after.
    project.show(timezone="America/New_York")
    project.season(
        premiere="2024-10-25",
        extra="release_time = 21:00:00",
        episodes={1: {}, 2: {}, 3: {"runtime": "45"}, 4: {}},
    )
    assert run(*build_args(project, "--as-of", "2024-10-01")).exit_code == 0
    path = project.output / "calendar.ics"
    expected = [
        datetime(2024, 10, 26, 1, tzinfo=UTC),
        datetime(2024, 11, 2, 1, tzinfo=UTC),
        datetime(2024, 11, 9, 2, tzinfo=UTC),
        datetime(2024, 11, 16, 2, tzinfo=UTC),
    ]
    for reader in (events_icalendar, events_vobject):
        events = reader(path)
        starts = [events[f"test-show-s01e{n:02d}@shows.example.net"]["start"] for n in range(1, 5)]
        assert starts == expected
    cal = icalendar.Calendar.from_ical(path.read_bytes())
    third = [e for e in cal.walk("VEVENT")][2]
    assert third.decoded("dtend") - third.decoded("dtstart") == timedelta(minutes=45)


def test_all_day_option_and_reminder(project: Project, run: Callable[..., Result]) -> None:
    project.show(**{"[author]": "[calendar]\nall_day = true\nreminder = 30\n\n[author]"})
    project.season(extra="release_time = 21:00:00", episodes=2)
    assert run(*build_args(project, "--as-of", "2024-01-01")).exit_code == 0
    cal = icalendar.Calendar.from_ical((project.output / "calendar.ics").read_bytes())
    for ev in cal.walk("VEVENT"):
        assert not isinstance(ev.decoded("dtstart"), datetime)
        (alarm,) = ev.walk("VALARM")
        assert alarm.decoded("trigger") == timedelta(minutes=-30)
        assert str(alarm["action"]) == "DISPLAY"


def test_uids_are_unique_across_seasons_and_shows(
    project: Project, tmp_path: Path, run: Callable[..., Result]
) -> None:
    project.show()
    project.season(number=1, episodes=3)
    project.season(number=2, premiere="2025-01-03", episodes=3)
    assert run(*build_args(project, "--as-of", "2024-01-01")).exit_code == 0
    uids = list(events_icalendar(project.output / "calendar.ics"))
    other = Project(tmp_path / "other")
    other.show(**{'slug = "test-show"': 'slug = "other-show"'})
    other.season(number=1, episodes=3)
    assert run(*build_args(other, "--as-of", "2024-01-01")).exit_code == 0
    uids += list(events_icalendar(other.output / "calendar.ics"))
    assert len(uids) == len(set(uids)) == 9


HOSTILE_TITLE = 'Commas, semicolons; back\\slash "quoted" \U0001f680 ' + "x" * 480


def test_hostile_text_round_trips(project: Project, run: Callable[..., Result]) -> None:
    synopsis = 'Line one, with; punctuation \\ and "quotes".\n\nLine two 🚀 ünïcödé.'
    project.show(**{"[author]": "[limits]\ntitle_characters = 600\n\n[author]"})  # > 200
    project.season(episodes={1: {"title": HOSTILE_TITLE, "synopsis": synopsis}})
    assert run(*build_args(project, "--as-of", "2024-01-01")).exit_code == 0
    path = project.output / "calendar.ics"
    raw = path.read_bytes()
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    raw.decode("utf-8")  # folding never splits a character
    title = HOSTILE_TITLE
    for reader in (events_icalendar, events_vobject):
        (event,) = reader(path).values()
        assert event["summary"] == f"Test Show S1 E1: {title}"
        assert str(event["description"]).startswith(
            "Line one, with; punctuation \\ and “quotes”.\n\nLine two 🚀 ünïcödé."
        )


def test_google_calendar_link_on_the_page(built: Project) -> None:
    html = (built.output / "index.html").read_text()
    links = re.findall(r'href="(https://calendar\.google\.com/[^"]+action=TEMPLATE[^"]*)"', html)
    assert len(links) == 7  # the episodes still to come as of 2023-11-24: E4 to E10
    query = parse_qs(urlsplit(links[0].replace("&amp;", "&")).query)
    assert query["text"] == ["For All Mankind S4 E4: House Divided"]
    assert query["dates"] == ["20231201/20231202"]
    assert "webcal://famfeeds.example.org/for-all-mankind/calendar.ics" in html


def test_a_corrupt_lock_file_is_a_clear_error(built: Project, run: Callable[..., Result]) -> None:
    before = built.snapshot()
    (built.root / "famfeeds.lock").write_text("[events\n")
    result = run(*build_args(built, "--as-of", "2023-11-24"))
    assert result.exit_code == 1
    assert "famfeeds.lock" in result.output
    assert "Traceback" not in result.output
    assert built.snapshot() == before


@settings(max_examples=300, deadline=None)
@given(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=400)
)
@example("C:\\New folder\\N; a, b\\")  # icalendar's escaping would make \N a line break
def test_fold_keeps_lines_short_and_unfolds_to_the_original(value: str) -> None:
    from famfeeds.render.calendar import fold, ical_text

    escaped = ical_text(value)
    folded = fold(b"DESCRIPTION:" + escaped)
    assert folded.endswith(b"\r\n")
    lines = folded[:-2].split(b"\r\n")
    assert all(len(line) <= 75 for line in lines)
    for line in lines:
        line.decode("utf-8")  # no character is split
    for before, after in itertools.pairwise(lines):
        assert after.startswith(b" ")
        trailing = len(before) - len(before.rstrip(b"\\"))
        assert trailing % 2 == 0  # no escape is split
    unfolded = folded[:-2].replace(b"\r\n ", b"")
    assert unfolded == b"DESCRIPTION:" + escaped
    cal = icalendar.Calendar.from_ical(
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n" + folded + b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    assert str(cal.walk("VEVENT")[0]["description"]) == value.replace("\r\n", "\n").replace(
        "\r", "\n"
    ) or value != value.strip("\r")


def test_a_build_at_another_address_keeps_the_published_history(
    built: Project, run: Callable[..., Result]
) -> None:
    lock = (built.root / "famfeeds.lock").read_bytes()
    move(built, "season-04/05-goldilocks.md", "2023-12-07")
    result = run(
        *build_args(
            built, "--as-of", "2023-11-30", "--base-url", "https://staging.example.com/fam/"
        )
    )
    assert result.exit_code == 0
    assert (built.root / "famfeeds.lock").read_bytes() == lock
    events = events_icalendar(built.output / "calendar.ics")
    assert sorted(events) == [
        f"for-all-mankind-s04e{n:02d}@staging.example.com" for n in range(1, 11)
    ]
    assert {e["status"] for e in events.values()} == {"CONFIRMED"}
    assert events["for-all-mankind-s04e05@staging.example.com"]["sequence"] == 1


ICAL_TEXT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufffe\uffff"),
    max_size=300,
)


@settings(max_examples=60, deadline=None)
@given(
    summary=ICAL_TEXT.filter(lambda t: t.strip() == t and t),
    description=st.lists(ICAL_TEXT, max_size=4).map("\n".join),
    location=ICAL_TEXT.filter(lambda t: t.strip() == t and t),
    categories=st.lists(ICAL_TEXT.filter(lambda t: t.strip() == t and t), min_size=1, max_size=3),
    timed=st.booleans(),
)
def test_the_event_serialiser_round_trips_any_text(
    summary: str, description: str, location: str, categories: list[str], timed: bool
) -> None:
    from famfeeds.render.calendar import EventData, calendar_bytes, serialise_event
    from famfeeds.render.context import Published

    start: date | datetime = date(2024, 1, 5)
    end: date | datetime = date(2024, 1, 6)
    if timed:
        start = datetime(2024, 1, 5, 21, tzinfo=UTC)
        end = start + timedelta(minutes=58)
    data = EventData(
        key="show-s01e01",
        season=1,
        summary=summary,
        start=start,
        end=end,
        description=description,
        url="https://example.org/s01/e01/",
        location=location,
        categories=tuple(categories),
        cancelled=False,
        reminder=30,
    )
    state = Published(2, datetime(2024, 1, 1, tzinfo=UTC), data.major, data.minor, summary, start)
    raw = calendar_bytes(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n",
        [serialise_event("show-s01e01@example.org", data, state)],
    )
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    (event,) = icalendar.Calendar.from_ical(raw).walk("VEVENT")
    assert str(event["SUMMARY"]) == summary
    assert str(event["DESCRIPTION"]) == description
    assert str(event["LOCATION"]) == location
    assert int(event["SEQUENCE"]) == 2
    assert len(event.walk("VALARM")) == 1
    parsed = vobject.readOne(raw.decode("utf-8"))
    assert parsed.vevent.summary.value == summary
    assert parsed.vevent.description.value == description
    assert parsed.vevent.dtstart.value == start


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.datetimes(timezones=st.just(UTC)))
def test_the_lock_writes_strings_and_moments_as_before(text: str, moment: datetime) -> None:
    """famfeeds.lock's quick paths give what json and strftime give."""
    import json

    from famfeeds.build.lockfile import _moment, _string

    assert _string(text) == json.dumps(text, ensure_ascii=False)
    assert _moment(moment) == moment.strftime("%Y-%m-%dT%H:%M:%SZ")
