"""TOML mistakes in show.toml, season.toml and episode front matter, explained in words.

Each case makes one mistake a person makes when editing by hand and checks what `build`
prints: the file and line, the record and the key, and what is wrong in plain words (never
tomllib's parser message), with exit status 1 and output/ exactly as it was."""

from __future__ import annotations

from collections.abc import Callable

import feedparser
import pytest
from click.testing import Result

from support import Project, build_args

EP1 = "season-01/01-episode-1.md"
SEASON = "season-01/season.toml"
SHOW = "show.toml"
ENDS_FRONT = "\n+++\n"
"""The closing fence of episode 1's front matter (after the title line)."""

# (file, old, new, fragments the output must hold)
CASES: dict[str, tuple[str, str, str, list[str]]] = {
    "episode: unclosed string": (
        EP1,
        'title = "Episode 1"',
        'title = "Episode 1',
        [
            f"content/{EP1}:3: S1 E1, field 'title': the string opened on line 3 is not closed",
            'end it with " on the same line',
        ],
    ),
    "episode: unclosed string on the last line of the front matter": (
        EP1,
        ENDS_FRONT,
        '\nimage_alt = "A cat on a sofa' + ENDS_FRONT,
        [f"content/{EP1}:4: S1 E1, field 'image_alt': the string opened on line 4 is not closed"],
    ),
    "episode: unclosed array": (
        EP1,
        ENDS_FRONT,
        '\nimage_alt = ["a", "b"' + ENDS_FRONT,
        [
            f"content/{EP1}:4: S1 E1, field 'image_alt': the array opened on line 4 is not closed",
            "put a comma between its items",
        ],
    ),
    "episode: a bare word for a date": (
        EP1,
        ENDS_FRONT,
        "\nrelease = tomorrow" + ENDS_FRONT,
        [
            f"content/{EP1}:4: S1 E1, field 'release': release needs a date such as 2025-01-17",
            "not tomorrow",
            "write the date as YYYY-MM-DD",
        ],
    ),
    "episode: nothing after '='": (
        EP1,
        ENDS_FRONT,
        "\nrelease = " + ENDS_FRONT,
        [
            f"content/{EP1}:4: S1 E1, field 'release': release has no value after '='",
            "release needs a date such as 2025-01-17",
        ],
    ),
    "episode: a key set twice": (
        EP1,
        ENDS_FRONT,
        '\ntitle = "Again"' + ENDS_FRONT,
        [
            f"content/{EP1}:4: S1 E1, field 'title': title is set twice, on line 3 and again "
            "on line 4",
            "keep one of them",
        ],
    ),
    "episode: no '='": (
        EP1,
        'title = "Episode 1"',
        'title "Episode 1"',
        [f"content/{EP1}:3: S1 E1, field 'title': title has no '=' between the key and its value"],
    ),
    "episode: True in capitals": (
        EP1,
        ENDS_FRONT,
        "\ndate_checked = True" + ENDS_FRONT,
        [
            f"content/{EP1}:4: S1 E1, field 'date_checked': date_checked needs true or false, "
            "in lower case, not True"
        ],
    ),
    "episode: typographic quotes": (
        EP1,
        'title = "Episode 1"',
        "title = \u201cEpisode 1\u201d",
        [
            f"content/{EP1}:3: S1 E1, field 'title': title is in typographic quotes",
            'use straight double quotes: title = "..."',
        ],
    ),
    "episode: a month that does not exist": (
        EP1,
        ENDS_FRONT,
        "\nrelease = 2024-13-01" + ENDS_FRONT,
        [f"content/{EP1}:4: S1 E1, field 'release': 2024-13-01 is not a valid date"],
    ),
    "season: unclosed string": (
        SEASON,
        'title = "Season 1"',
        'title = "Season 1',
        [f"content/{SEASON}:2: season 1, field 'title': the string opened on line 2 is not closed"],
    ),
    "season: a bare word for a date": (
        SEASON,
        "premiere = 2024-01-05",
        "premiere = next-friday",
        [
            f"content/{SEASON}:3: season 1, field 'premiere': premiere needs a date such as "
            "2025-01-17, not next-friday"
        ],
    ),
    "season: nothing after '='": (
        SEASON,
        "premiere = 2024-01-05",
        "premiere =",
        [
            f"content/{SEASON}:3: season 1, field 'premiere': premiere has no value after '='",
            "premiere needs a date such as 2025-01-17",
        ],
    ),
    "season: a bare word for text": (
        SEASON,
        'cadence = "weekly"',
        "cadence = weekly",
        [
            f"content/{SEASON}:4: season 1, field 'cadence': cadence needs text in double quotes",
            'put text in double quotes: cadence = "weekly"',
        ],
    ),
    "season: a word for a number": (
        SEASON,
        "number = 1",
        "number = one",
        [f"content/{SEASON}:1", "field 'number': number needs a whole number such as 3, not one"],
    ),
    "season: something after the value": (
        SEASON,
        "number = 1",
        "number = 1 2",
        [
            f"content/{SEASON}:1: season 1, field 'number': something follows the value of "
            "number on the same line"
        ],
    ),
    "season: a date set twice": (
        SEASON,
        "premiere = 2024-01-05",
        "premiere = 2024-01-05\npremiere = 2024-01-12",
        [
            f"content/{SEASON}:4: season 1, field 'premiere': premiere is set twice, on line 3 "
            "and again on line 4"
        ],
    ),
    "season: a time without seconds": (
        SEASON,
        'cadence = "weekly"',
        'cadence = "weekly"\nrelease_time = 21:00',
        [f"content/{SEASON}:5", "field 'release_time'", "a time needs seconds"],
    ),
    "show: unclosed multi-line string": (
        SHOW,
        'description = "A show for tests."',
        'description = """A show for tests.',
        [
            "content/show.toml:8: show, field 'description': the string opened on line 8 is "
            "not closed",
            'end it with """',
        ],
    ),
    "show: a table written twice": (
        SHOW,
        'name = "Tester"\n',
        'name = "Tester"\n\n[author]\nname = "Other"\n',
        [
            "content/show.toml:13: show, field 'author': the table [author] is written twice, "
            "on line 10 and again on line 13",
            "merge the two into one [author] table",
        ],
    ),
    "show: a bare word in a table": (
        SHOW,
        'name = "Tester"',
        "name = Tester",
        [
            "content/show.toml:11: show, field 'author.name': name needs text in double quotes",
            'put text in double quotes: name = "Tester"',
        ],
    ),
    "show: unclosed inline table": (
        SHOW,
        'description = "A show for tests."',
        'description = "A show for tests."\ncalendar = { all_day = true',
        [
            "content/show.toml:9: show, field 'calendar': the inline table opened on line 9 is "
            "not closed"
        ],
    ),
    "show: a space in a key": (
        SHOW,
        'description = "A show for tests."',
        'description = "A show for tests."\nfeed entries = 5',
        ["content/show.toml:9: show: a key cannot contain a space: feed entries", "feed_entries"],
    ),
    "show: a backslash that starts no escape": (
        SHOW,
        'description = "A show for tests."',
        'description = "C:\\shows"',
        [
            "content/show.toml:8: show, field 'description': a backslash in a",
            "write \\\\ for a backslash itself",
        ],
    ),
    "show: a table header without ]": (
        SHOW,
        "[author]",
        "[author",
        ["content/show.toml:10: show: the table header on line 10 has no closing ]"],
    ),
}


@pytest.fixture
def built(project: Project, run: Callable[..., Result]) -> Project:
    """A valid project, built once."""
    project.show()
    project.season(episodes=3)
    assert run(*build_args(project, "--as-of", "2024-02-01")).exit_code == 0
    return project


def rewrite(project: Project, relative: str, old: str, new: str) -> None:
    path = project.content / relative
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} not once in {relative}"
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_toml_mistake_is_explained_in_words(
    built: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    relative, old, new, expected = CASES[case]
    before = built.snapshot()
    rewrite(built, relative, old, new)
    monkeypatch.chdir(built.root)
    result = run("build", "--content", "content", "--output", "output", "--as-of", "2024-02-01")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "Error: 1 problem in the content; nothing was written:" in result.output
    assert "TOML syntax error" not in result.output
    for fragment in expected:
        assert fragment in result.output, f"{fragment!r} missing from:\n{result.output}"
    assert built.snapshot() == before


def test_mistakes_in_all_three_kinds_of_file_are_reported_together(
    built: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = built.snapshot()
    rewrite(built, SHOW, 'name = "Tester"', "name = Tester")
    rewrite(built, SEASON, "premiere = 2024-01-05", "premiere =")
    rewrite(built, EP1, 'title = "Episode 1"', 'title = "Episode 1')
    rewrite(
        built,
        "season-01/02-episode-2.md",
        'title = "Episode 2"',
        'title = "Episode 2"\ntitle = "Two"',
    )
    monkeypatch.chdir(built.root)
    result = run("build", "--content", "content", "--output", "output", "--as-of", "2024-02-01")
    assert result.exit_code == 1
    assert "4 problems in the content; nothing was written:" in result.output
    for fragment in (
        "content/show.toml:11: show, field 'author.name'",
        f"content/{SEASON}:3: season 1, field 'premiere'",
        f"content/{EP1}:3: S1 E1, field 'title'",
        "content/season-01/02-episode-2.md:4: S1 E2, field 'title': title is set twice",
    ):
        assert fragment in result.output, f"{fragment!r} missing from:\n{result.output}"
    assert built.snapshot() == before


def test_tabs_a_byte_order_mark_and_crlf_are_read_as_written(
    project: Project, run: Callable[..., Result]
) -> None:
    """Valid TOML that editors on other systems produce: a BOM, CRLF endings, tabs."""
    project.show()
    project.season(episodes=2)
    for relative in (SHOW, SEASON, EP1):
        path = project.content / relative
        text = path.read_text(encoding="utf-8").replace(" = ", "\t=\t")
        text = text.replace("\nname", "\n\tname").replace("Episode 1", "Tabbed one")
        path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    result = run(*build_args(project, "--as-of", "2024-02-01"))
    assert result.exit_code == 0, result.output
    feed = feedparser.parse((project.output / "feed.xml").read_bytes())
    assert feed.bozo == 0
    assert feed.feed.title.startswith("Test Show")
    assert [entry.title for entry in feed.entries] == ["S1 E2 · Episode 2", "S1 E1 · Tabbed one"]
    assert feed.feed.author == "Tester"
