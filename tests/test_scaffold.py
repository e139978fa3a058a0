"""famfeeds init and new: from nothing to a project that checks, builds and shows its dates."""

from __future__ import annotations

import re
import stat
import subprocess
import tomllib
from collections.abc import Callable
from datetime import date
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from famfeeds.build.scaffold import ShowAnswers, episode_md, show_toml, slugify
from famfeeds.cli import cli
from famfeeds.records.models import SLUG_PATTERN

EPOCH_2026_11_28 = "1795834800"  # 2026-11-28 03:00 UTC: still 2026-11-27 in New York
INIT = [
    "--no-input",
    "--title",
    "Lanterns of Ålesund",
    "--service",
    "Apple TV+",
    "--timezone",
    "America/New_York",
    "--premiere",
    "2026-11-04",
    "--time",
    "21:00",
    "--episodes",
    "8",
]


def front(path: Path) -> dict[str, object]:
    """The TOML front matter of an episode file."""
    text = path.read_text(encoding="utf-8")
    return tomllib.loads(text.split("+++\n")[1])


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def started(tmp_path: Path, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project made by ``famfeeds init --no-input``; its root."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH_2026_11_28)
    result = run("init", tmp_path / "lanterns", *INIT)
    assert result.exit_code == 0, result.output
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    return tmp_path / "lanterns"


def test_init_without_input_checks_strictly_builds_and_shows_its_schedule(
    started: Path, run: Callable[..., Result]
) -> None:
    content = started / "content"
    show = tomllib.loads((content / "show.toml").read_text(encoding="utf-8"))
    assert show["title"] == "Lanterns of Ålesund"
    assert show["slug"] == "lanterns-of-alesund"
    assert show["timezone"] == "America/New_York"
    assert show["id_date"] == date(2026, 11, 27)  # "today" in the show's zone
    assert "never change it" in (content / "show.toml").read_text(encoding="utf-8")
    season = tomllib.loads((content / "season-01/season.toml").read_text(encoding="utf-8"))
    assert season["premiere"] == date(2026, 11, 4)
    assert str(season["release_time"]) == "21:00:00"
    episodes = sorted(p.name for p in (content / "season-01").glob("*.md"))
    assert episodes == [f"{n:02d}-episode-{n}.md" for n in range(1, 9)]

    checked = run("check", "--content", content, "--strict")
    assert checked.exit_code == 0, checked.output
    assert "warning" not in checked.output

    built = run(
        "build", "--content", content, "--output", started / "output", "--as-of", "2026-11-20"
    )
    assert built.exit_code == 0, built.output
    feed = feedparser.parse((started / "output/feed.xml").read_bytes())
    assert feed.bozo == 0
    assert [e.title for e in feed.entries] == [f"S1 E{n} · Episode {n}" for n in (3, 2, 1)]

    table = run("schedule", "--content", content, "--as-of", "2026-11-20")
    assert table.exit_code == 0, table.output
    rows = [line.split() for line in table.output.splitlines() if line.startswith("  S1 E")]
    assert [r[1] for r in rows] == [f"E{n}" for n in range(1, 9)]
    assert [r[5] for r in rows] == [
        f"2026-{d}"
        for d in ("11-04", "11-11", "11-18", "11-25", "12-02", "12-09", "12-16", "12-23")
    ]
    assert [r[7] for r in rows] == ["EST"] * 8
    statuses = [r[10] for r in rows]
    assert statuses == ["released"] * 3 + ["next"] + ["upcoming"] * 4


def test_init_prints_what_it_wrote_and_what_to_do_next(
    tmp_path: Path, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("init", "lanterns", *INIT)
    assert result.exit_code == 0
    assert "lanterns/content/show.toml" in result.output
    assert "Season 1: 8 episodes, Wed 2026-11-04 to Wed 2026-12-23." in result.output
    assert "cd lanterns" in result.output and "famfeeds schedule" in result.output
    assert "base_url is a placeholder" in result.output


def test_init_asks_again_until_each_answer_is_valid(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    answers = [
        "Lanterns",  # title
        "",  # service: required, asked again
        "Apple TV+",
        "EST",  # a fixed-offset zone: refused with the city to use
        "Eastern",  # unknown
        "America/New_York",
        "2026-02-30",  # no such day
        "2026-11-04",
        "9pm",  # not HH:MM
        "21:00",
        "eight",
        "8",
        "",  # base URL: the default
        "",  # the subscriptions service's URL: none, so no newsletter
    ]
    result = CliRunner().invoke(
        cli, ["init", str(tmp_path / "show")], input="\n".join(answers) + "\n"
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Show title [Show]:" in out
    assert out.count("Where it streams or airs") == 2  # an empty answer is asked again
    assert "'EST' is a fixed UTC-05:00 zone" in out and "'America/New_York'" in out
    assert "unknown time zone 'Eastern'" in out
    assert "2026-02-30 is not a valid date: February 2026 has 28 days" in out
    assert "'9pm' is not a time of day; write HH:MM" in out
    assert "'eight' is not a number of episodes" in out
    assert "[https://example.org/lanterns/]" in out
    assert "Public URL of the subscriptions service" in out
    content = tmp_path / "show/content"
    show = tomllib.loads((content / "show.toml").read_text(encoding="utf-8"))
    assert (show["title"], show["service"], show["timezone"]) == (
        "Lanterns",
        "Apple TV+",
        "America/New_York",
    )
    assert show["base_url"] == "https://example.org/lanterns/"
    assert "newsletter" not in show
    assert len(list((content / "season-01").glob("*.md"))) == 8
    assert run("check", "--content", content, "--strict").exit_code == 0
    built = run("build", "--content", content, "--output", tmp_path / "show/output")
    assert built.exit_code == 0, built.output


def test_init_with_all_day_releases(tmp_path: Path, run: Callable[..., Result]) -> None:
    answers = ["Lanterns", "Apple TV+", "Europe/Berlin", "2026-11-04", "", "1", "", ""]
    result = CliRunner().invoke(cli, ["init", str(tmp_path)], input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    season = (tmp_path / "content/season-01/season.toml").read_text(encoding="utf-8")
    assert "\n# release_time = 21:00:00" in season
    table = run("schedule", "--content", tmp_path / "content", "--as-of", "2026-11-01")
    assert "Wed 2026-11-04 all day" in table.output


def test_no_input_needs_the_service_and_refuses_a_legacy_zone(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    missing = run("init", tmp_path / "a", "--no-input", "--title", "X")
    assert missing.exit_code == 2
    assert "--no-input needs --service" in missing.output
    legacy = run("init", tmp_path / "b", *INIT[:5], "--timezone", "EST")
    assert legacy.exit_code == 2
    assert "'--timezone'" in legacy.output and "'America/New_York'" in legacy.output
    bad_url = run("init", tmp_path / "c", *INIT, "--base-url", "example.org/show")
    assert bad_url.exit_code == 2 and "absolute http(s) URL" in bad_url.output
    assert not any((tmp_path / name).exists() for name in "abc")


def test_init_never_overwrites(started: Path, run: Callable[..., Result]) -> None:
    (started / "content/show.toml").write_text("# mine\n", encoding="utf-8")
    before = files_under(started)
    again = run("init", started, *INIT)
    assert again.exit_code == 1
    assert "refusing to overwrite" in again.output
    assert "content/show.toml" in again.output and "season-01/season.toml" in again.output
    assert files_under(started) == before


def test_a_conflict_writes_nothing_at_all(tmp_path: Path, run: Callable[..., Result]) -> None:
    (tmp_path / "content/season-01").mkdir(parents=True)
    (tmp_path / "content/season-01/03-episode-3.md").write_text("mine", encoding="utf-8")
    result = run("init", tmp_path, *INIT)
    assert result.exit_code == 1
    assert sorted(files_under(tmp_path)) == ["content/season-01/03-episode-3.md"]


def test_init_keeps_a_readme_and_extends_a_gitignore(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    (tmp_path / "README.md").write_text("# My notes\n", encoding="utf-8")
    (tmp_path / ".gitignore").write_text("*.pyc\n/output/", encoding="utf-8")
    result = run("init", tmp_path, *INIT)
    assert result.exit_code == 0, result.output
    assert f"kept your {tmp_path}/README.md" in result.output
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == "# My notes\n"
    lines = (tmp_path / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert lines[:2] == ["*.pyc", "/output/"]
    assert lines.count("/output/") == 1
    assert "/.famfeeds-cache/" in lines and "/.famfeeds-state/" in lines


def test_the_gitignore_hides_what_must_not_be_committed(
    started: Path, run: Callable[..., Result]
) -> None:
    built = run("build", "--content", started / "content", "--output", started / "output")
    assert built.exit_code == 0, built.output
    (started / ".famfeeds-state").mkdir()
    (started / ".famfeeds-state/ledger.sqlite3").write_bytes(b"")
    subprocess.run(["git", "init", "-q", str(started)], check=True)

    def ignored(name: str) -> bool:
        done = subprocess.run(["git", "-C", str(started), "check-ignore", "-q", name])
        assert done.returncode in (0, 1)
        return done.returncode == 0

    for name in (
        "output/feed.xml",
        ".famfeeds-cache/x.json",
        ".famfeeds-preview/index.html",
        ".famfeeds-state/ledger.sqlite3",
        ".output.famfeeds-abc/feed.xml",
    ):
        assert ignored(name), name
    for name in ("content/show.toml", "famfeeds.lock", "README.md", "templates/x.j2"):
        assert not ignored(name), name


def test_the_build_cache_folder_is_private(started: Path, run: Callable[..., Result]) -> None:
    result = run("build", "--content", started / "content", "--output", started / "output")
    assert result.exit_code == 0
    cache = started / ".famfeeds-cache"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    cache.chmod(0o755)
    run("build", "--content", started / "content", "--output", started / "output")
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700


# famfeeds new -----------------------------------------------------------------------------


def test_new_season_takes_the_next_number_and_the_previous_release_time(
    started: Path, run: Callable[..., Result]
) -> None:
    content = started / "content"
    result = run(
        "new", "season", "--content", content, "--premiere", "2027-09-01", "--episodes", "3"
    )
    assert result.exit_code == 0, result.output
    assert "Wrote " in result.output and "season-02/season.toml" in result.output
    assert "Season 2: 3 episodes, Wed 2027-09-01 to Wed 2027-09-15." in result.output
    season = tomllib.loads((content / "season-02/season.toml").read_text(encoding="utf-8"))
    assert season["number"] == 2 and str(season["release_time"]) == "21:00:00"
    assert run("check", "--content", content, "--strict").exit_code == 0
    table = run("schedule", "--content", content, "--season", "2", "--as-of", "2027-01-01")
    assert "Wed 2027-09-01 21:00 EDT 2027-09-02 01:00" in " ".join(table.output.split())
    assert "S1 E" not in table.output
    again = run("new", "season", "2", "--content", content, "--premiere", "2028-01-01")
    assert again.exit_code == 1
    assert "season 2 already exists" in again.output and "new episode 2" in again.output


def test_new_season_all_at_once_without_a_time(started: Path, run: Callable[..., Result]) -> None:
    content = started / "content"
    result = run(
        "new",
        "season",
        "5",
        "--content",
        content,
        "--premiere",
        "2028-03-03",
        "--episodes",
        "4",
        "--cadence",
        "all-at-once",
        "--time",
        "",
    )
    assert result.exit_code == 0, result.output
    assert "Season 5: 4 episodes, Fri 2028-03-03." in result.output
    text = (content / "season-05/season.toml").read_text(encoding="utf-8")
    comments = " ".join(line.removeprefix("# ") for line in text.splitlines() if line[:1] == "#")
    assert "every episode: all of them on the premiere" in comments
    assert "later" not in comments
    assert tomllib.loads(text).get("release_time") is None


def test_new_episode_gets_the_next_number_an_ascii_slug_and_its_date(
    started: Path, run: Callable[..., Result]
) -> None:
    content = started / "content"
    result = run(
        "new",
        "episode",
        "--content",
        content,
        "--title",
        "Чернобыль: Finale",
        "--release",
        "2026-12-30",
    )
    assert result.exit_code == 0, result.output
    path = content / "season-01/09-chernobyl-finale.md"
    assert front(path) == {"number": 9, "title": "Чернобыль: Finale", "release": date(2026, 12, 30)}
    assert "S1 E9 comes out Wed 2026-12-30 21:00 EST (from release = 2026-12-30)." in (
        result.output
    )
    plain = run("new", "episode", "1", "--content", content)
    assert plain.exit_code == 0
    assert "10-episode-10.md" in plain.output
    assert "S1 E10 comes out Wed 2027-01-06 21:00 EST (next weekly slot after E9)." in (
        plain.output
    )
    assert run("check", "--content", content, "--strict").exit_code == 0


def test_new_episode_titles_round_trip_and_slugs_never_collide(
    started: Path, run: Callable[..., Result]
) -> None:
    content = started / "content"
    tricky = 'Episode 3 "\\o/" — Ünïcödé'
    result = run("new", "episode", "--content", content, "--title", tricky)
    assert result.exit_code == 0, result.output
    assert front(content / "season-01/09-episode-3-o-unicode.md")["title"] == tricky
    again = run("new", "episode", "--content", content, "--title", "Episode 3")
    assert "10-episode-3-2.md" in again.output
    assert run("check", "--content", content, "--strict").exit_code == 0


def test_new_refuses_clearly(tmp_path: Path, started: Path, run: Callable[..., Result]) -> None:
    nowhere = run("new", "episode", "--content", tmp_path / "nothing")
    assert nowhere.exit_code == 1 and "famfeeds init" in nowhere.output
    no_season = run("new", "episode", "7", "--content", started / "content")
    assert no_season.exit_code == 1
    assert "there is no season 7" in no_season.output and "seasons: 1" in no_season.output
    assert "famfeeds new season 7 --premiere" in no_season.output
    bad = run("new", "episode", "--content", started / "content", "--release", "soon")
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    two_lines = run("new", "episode", "--content", started / "content", "--title", "a\nb")
    assert two_lines.exit_code == 2 and "one line" in two_lines.output
    assert len(list((started / "content/season-01").glob("*.md"))) == 8


# slugs and escaping -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "title,slug",
    [
        ("The Bear Hug", "the-bear-hug"),
        ("Café Society", "cafe-society"),
        ("Straße nach Ålesund", "strasse-nach-alesund"),
        ("Чернобыль", "chernobyl"),
        ("Ελληνικά", "ellinika"),
        ("Don\u2019t Look Back", "dont-look-back"),
        ("Law & Order: SVU", "law-order-svu"),
        ("😀 Party 🎉", "party"),
        ("🎉🎉", ""),
        ("  --  ", ""),
        ("Part Ⅱ ½", "part-ii-1-2"),
        ("word " * 30, "-".join(["word"] * 12)),
    ],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug


one_line = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60
).filter(lambda t: t.strip() == t and t.strip() != "")


@settings(max_examples=200, deadline=None)
@given(title=one_line, service=one_line)
def test_any_title_round_trips_through_the_written_files(title: str, service: str) -> None:
    answers = ShowAnswers(
        title, service, "UTC", "https://example.org/x/", "en", date(2026, 1, 1), None
    )
    show = tomllib.loads(show_toml(answers, date(2026, 1, 1)))
    assert show["title"] == title and show["service"] == service
    assert title in show["description"]
    slug = slugify(title)
    assert slug == "" or re.fullmatch(SLUG_PATTERN, slug)
    assert slug.isascii() and len(slug) <= 60
    episode = episode_md(1, 1, title, None, date(2026, 1, 1))
    assert tomllib.loads(episode.split("+++\n")[1])["title"] == title


def test_new_episode_warns_about_a_date_before_the_last_one(
    started: Path, run: Callable[..., Result]
) -> None:
    result = run("new", "episode", "--content", started / "content", "--release", "2026-11-01")
    assert result.exit_code == 0
    assert "warning: " in result.output and "S1 E9, field 'release'" in result.output


def test_init_and_check_leave_no_folder_behind_and_write_no_cache(
    tmp_path: Path, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """init checks its answers in a scratch copy, and check reads the records: neither is a
    build, so neither leaves a cache, and a later build in the same process (a test runner,
    famfeeds run) does not bring the deleted scratch folder back to save one into it."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", None)  # read TMPDIR again
    assert run("init", tmp_path / "lanterns", *INIT).exit_code == 0
    content = tmp_path / "lanterns/content"
    assert run("check", "--content", content).exit_code == 0
    assert not (tmp_path / "lanterns/.famfeeds-cache").exists()
    built = run("build", "--content", content, "--output", tmp_path / "lanterns/output")
    assert built.exit_code == 0, built.output
    assert list(scratch.iterdir()) == []
    assert (tmp_path / "lanterns/.famfeeds-cache").is_dir()  # the build's own cache
