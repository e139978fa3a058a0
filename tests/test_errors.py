"""One test per class of bad input: a precise message, exit 1, output/ untouched."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import Result

from support import Project, build_args, episode_text


@pytest.fixture
def built(project: Project, run: Callable[..., Result]) -> Project:
    """A valid project, built once, with a file of the user's own in output/."""
    project.show()
    project.season(episodes=3)
    assert run(*build_args(project, "--as-of", "2024-02-01")).exit_code == 0
    (project.output / "robots.txt").write_text("User-agent: *\n")
    return project


def rewrite(project: Project, relative: str, old: str, new: str) -> None:
    path = project.content / relative
    text = path.read_text()
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new))


EP1 = "season-01/01-episode-1.md"
SEASON = "season-01/season.toml"

CASES: dict[str, tuple[Callable[[Project], None], list[str]]] = {
    "unknown key (typo)": (
        lambda p: rewrite(p, EP1, "title =", "titel ="),
        [f"content/{EP1}:3", "'titel'", "did you mean 'title'"],
    ),
    "missing required field": (
        lambda p: rewrite(p, "show.toml", 'service = "Example+"\n', ""),
        ["content/show.toml", "'service'", "required field is missing"],
    ),
    "malformed date": (
        lambda p: rewrite(p, SEASON, "premiere = 2024-01-05", 'premiere = "next friday"'),
        [f"content/{SEASON}:3", "'premiere'", "not a valid date"],
    ),
    "impossible date": (
        lambda p: rewrite(p, SEASON, "premiere = 2024-01-05", "premiere = 2024-02-30"),
        [f"content/{SEASON}:3", "'premiere'", "2024-02-30 is not a valid date: February 2024"],
    ),
    "unquoted two-digit year": (
        lambda p: rewrite(p, SEASON, "premiere = 2024-01-05", "premiere = 24-01-05"),
        [f"content/{SEASON}:3", "'premiere'", "24-01-05 is not a date in the form YYYY-MM-DD"],
    ),
    "unquoted impossible time": (
        lambda p: rewrite(
            p, SEASON, 'cadence = "weekly"', 'cadence = "weekly"\nrelease_time = 24:00:00'
        ),
        [f"content/{SEASON}:5", "'release_time'", "24:00:00 is not a valid time of day"],
    ),
    "unquoted date-time without seconds": (
        lambda p: p.write(EP1, episode_text(1, "One", release="2024-01-05T21:00")),
        [f"content/{EP1}:4", "'release'", "needs seconds", "2024-01-05T21:00:00"],
    ),
    "impossible date in a table": (
        lambda p: rewrite(p, "show.toml", 'name = "Tester"', 'name = "Tester"\nborn = 2024-02-31'),
        ["content/show.toml:12", "'author.born'", "February 2024 has 29 days"],
    ),
    "unknown time zone": (
        lambda p: rewrite(p, "show.toml", "America/New_York", "Mars/Happy_Valley"),
        ["content/show.toml:7", "'timezone'", "unknown time zone 'Mars/Happy_Valley'"],
    ),
    "duplicate episode number": (
        lambda p: p.write("season-01/04-extra.md", episode_text(3, "Extra")),
        ["content/season-01/04-extra.md", "number is 3 but the file name says 4"],
    ),
    "same number twice": (
        lambda p: p.write("season-01/03-another.md", episode_text(3, "Another")),
        [
            "content/season-01/03-episode-3.md:2: S1 E3, field 'number'",
            "episode number 3 is also used by content/season-01/03-another.md:2",
        ],
    ),
    "same season number twice": (
        lambda p: (
            p.write("season-1/season.toml", (p.content / SEASON).read_text()),
            p.write("season-1/01-again.md", (p.content / EP1).read_text()),
        ),
        ["content/season-1/season.toml:1", "also defined in content/season-01/season.toml:1"],
    ),
    "missing table": (
        lambda p: rewrite(p, "show.toml", '[author]\nname = "Tester"\n', ""),
        ["content/show.toml", "'author'", 'add an [author] table with name = "..."'],
    ),
    "missing key in a table": (
        lambda p: rewrite(p, "show.toml", 'name = "Tester"', 'uri = "https://example.org/"'),
        ["content/show.toml:10", "'author.name'", "add name = ... under [author]"],
    ),
    "title over the limit": (
        lambda p: p.write(EP1, episode_text(1, "T" * 201)),
        [f"content/{EP1}:3", "'title'", "201 characters long; the limit is 200", "[limits]"],
    ),
    "file over the limit": (
        lambda p: p.write(EP1, episode_text(1, "One", "x" * 1_000_000)),
        [f"content/{EP1}", "bytes; the limit is 1,000,000", "file_bytes"],
    ),
    "bidi override in a title": (
        lambda p: p.write(EP1, episode_text(1, "Tit\u202ele")),
        [f"content/{EP1}:3", "'title'", "U+202E RIGHT-TO-LEFT OVERRIDE at character 4"],
    ),
    "bad character reference": (
        lambda p: p.write(EP1, episode_text(1, "One", "Zero &#0; here.")),
        [f"content/{EP1}:6", "'synopsis'", "&#0; at column 6", "U+FFFD"],
    ),
    "internationalised domain that IDNA refuses": (
        lambda p: rewrite(
            p, "show.toml", "https://shows.example.net/test/", "https://xn--a.例/test/"
        ),
        ["content/show.toml:3", "'base_url'", "not a valid internationalised domain name"],
    ),
    "missing episode number": (
        lambda p: (p.content / "season-01/02-episode-2.md").unlink(),
        ["content/season-01", "episode number(s) 2 missing"],
    ),
    "duplicate slug": (
        lambda p: p.write("season-01/04-episode-3.md", episode_text(4, "Four")),
        ["slug 'episode-3' is also used by"],
    ),
    "relative URL": (
        lambda p: rewrite(
            p, "show.toml", 'base_url = "https://shows.example.net/test/"', 'base_url = "/test/"'
        ),
        ["content/show.toml:3", "'base_url'", "absolute http(s) URL"],
    ),
    "relative image URL": (
        lambda p: p.write(EP1, episode_text(1, "One", image='"img/one.jpg"')),
        [f"content/{EP1}:4", "'image'", "absolute http(s) URL"],
    ),
    "TOML syntax error": (
        lambda p: rewrite(p, EP1, 'title = "Episode 1"', 'title = "Episode 1'),
        [f"content/{EP1}:3", "'title'", "the string opened on line 3 is not closed"],
    ),
    "time without seconds": (
        lambda p: rewrite(
            p, SEASON, 'cadence = "weekly"', 'cadence = "weekly"\nrelease_time = 21:00'
        ),
        [f"content/{SEASON}:5", "a time needs seconds"],
    ),
    "unknown cadence": (
        lambda p: rewrite(p, SEASON, '"weekly"', '"fortnightly-ish"'),
        [f"content/{SEASON}:4", "'cadence'", "unknown cadence 'fortnightly-ish'"],
    ),
    "control character": (
        lambda p: p.write(EP1, episode_text(1, "One", "Bell \x07 here.")),
        [f"content/{EP1}:6", "control character U+0007"],
    ),
    "bad episode file name": (
        lambda p: p.write("season-01/Four.md", episode_text(4, "Four")),
        ["content/season-01/Four.md", "EE-slug.md"],
    ),
    "season number mismatch": (
        lambda p: rewrite(p, SEASON, "number = 1", "number = 2"),
        [f"content/{SEASON}:1", "the folder is season-01"],
    ),
    "no front matter": (lambda p: p.write(EP1, "Just a synopsis.\n"), [f"content/{EP1}:1", "+++"]),
    "bad language code": (
        lambda p: rewrite(p, "show.toml", 'language = "en"', 'language = "en_US"'),
        ["content/show.toml:5", "'language'", "ISO 639"],
    ),
    "missing show.toml": (
        lambda p: (p.content / "show.toml").unlink(),
        ["content/show.toml", "missing file"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_reported_precisely_and_writes_nothing(
    built: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    before = built.snapshot()
    breaker, expected = CASES[case]
    breaker(built)
    monkeypatch.chdir(built.root)
    result = run("build", "--content", "content", "--output", "output", "--as-of", "2024-02-01")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "nothing was written" in result.output
    for fragment in expected:
        assert fragment in result.output, f"{fragment!r} missing from:\n{result.output}"
    assert built.snapshot() == before
    assert not list(built.root.glob(".output.famfeeds-*"))


def test_all_problems_are_reported_together(built: Project, run: Callable[..., Result]) -> None:
    rewrite(built, EP1, "title =", "titel =")
    rewrite(built, SEASON, "premiere = 2024-01-05", "premiere = 2024-02-30")
    rewrite(built, "show.toml", "America/New_York", "Nowhere/Town")
    result = run("check", "--content", built.content)
    assert result.exit_code == 1
    assert "3 problems" in result.output
    for fragment in ("'titel'", "2024-02-30", "Nowhere/Town"):
        assert fragment in result.output


def test_missing_content_folder(tmp_path, run: Callable[..., Result], monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("build", "--content", "content", "--output", "out")
    assert result.exit_code == 1
    assert "  content: the content folder does not exist (pass --content DIR" in result.output
    assert not (tmp_path / "out").exists()


def test_check_says_what_check_does(built: Project, run: Callable[..., Result]) -> None:
    """check never writes, so it does not say "nothing was written"; build does."""
    rewrite(built, EP1, "title =", "titel =")
    checked = run("check", "--content", built.content)
    assert checked.exit_code == 1
    assert "Error: 1 problem in the content:\n" in checked.output
    assert "nothing was written" not in checked.output
    built_ = run(*build_args(built, "--as-of", "2024-02-01"))
    assert built_.exit_code == 1
    assert "Error: 1 problem in the content; nothing was written:\n" in built_.output


def test_a_link_out_of_the_content_folder_is_refused(
    built: Project, run: Callable[..., Result]
) -> None:
    outside = built.root / "elsewhere"
    outside.mkdir()
    (outside / "notes.md").write_text("Secret.")
    (built.content / "season-01/newsletter").symlink_to(outside, target_is_directory=True)
    before = built.snapshot()
    result = run(*build_args(built, "--as-of", "2024-02-01"))
    assert result.exit_code == 1
    assert f"season-01/newsletter: season 1: this is a link to {outside}" in result.output
    assert "outside the content folder" in result.output
    assert built.snapshot() == before


def test_strict_turns_warnings_into_errors(project: Project, run: Callable[..., Result]) -> None:
    project.show()
    project.season(episodes={1: {}, 2: {"release": "2024-01-01"}})
    lenient = run(*build_args(project, "--as-of", "2024-02-01"))
    assert lenient.exit_code == 0
    assert "warning:" in lenient.output
    before = project.snapshot()
    strict = run(*build_args(project, "--as-of", "2024-02-02", "--strict"))
    assert strict.exit_code == 1
    assert "--strict" in strict.output
    assert project.snapshot() == before
