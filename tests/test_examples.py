"""The documentation's worked examples (tests/examples.py, shown in
docs/content/release-dates.md) check strictly, build, and schedule the way the page says."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
from click.testing import Result

from examples import EXAMPLES, Example


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_example_builds_and_schedules_as_the_docs_say(
    example: Example, tmp_path: Path, run: Callable[..., Result]
) -> None:
    content = example.write(tmp_path / "content")
    checked = run("check", "--content", content, "--strict")
    assert checked.exit_code == 0, checked.output

    built = run(
        "build", "--content", content, "--output", tmp_path / "output", "--as-of", example.as_of
    )
    assert built.exit_code == 0, built.output
    calendar = icalendar.Calendar.from_ical((tmp_path / "output/calendar.ics").read_bytes())
    starts: dict[int, date] = {}
    zone = example.timezone
    for event in calendar.walk("VEVENT"):
        number = int(re.search(r"e(\d+)@", str(event["UID"])).group(1))  # type: ignore[union-attr]
        start = event.decoded("DTSTART")
        assert isinstance(start, datetime)
        starts[number] = start.astimezone(ZoneInfo(zone)).date()
    assert len(starts) == example.count

    data = json.loads(
        run("schedule", "--content", content, "--as-of", example.as_of, "--json").output
    )
    (season,) = data["seasons"]
    days = {e["episode"]: e["date"] for e in season["episodes"]}
    for number, day in example.days.items():
        assert days[number] == day, number
        assert starts[number].isoformat() == day, number  # the calendar agrees
    assert tuple(g["text"] for g in season["gaps"]) == example.gaps
    statuses = [e["status"] for e in season["episodes"]]
    assert statuses.count("next") <= 1

    table = run("schedule", "--content", content, "--as-of", example.as_of).output
    for number, words in example.why.items():
        line = next(
            " ".join(line.split())
            for line in table.splitlines()
            if line.startswith(f"  S1 E{number} ")
        )
        assert words in line, (number, line)
    for gap in example.gaps:
        assert f"({gap})" in table
