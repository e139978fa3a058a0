"""Rebuilds that reuse earlier work (parsed records, remembered pages, events and issues,
files left in place) give exactly what a build from nothing gives: every output file and
famfeeds.lock, byte for byte, after each kind of change a user makes."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

import famfeeds.build.inplace
from support import Project, build_args, episode_text

NEWSLETTER = """
[newsletter]
sender_name = "Test weekly"
sender_address = "news@example.net"
unsubscribe_url = "https://example.net/unsubscribe?token={token}"
"""
AS_OF = "2024-03-03"


@pytest.fixture(params=[pytest.param("swap", marks=pytest.mark.slow), "in place"])
def catalogue(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Project:
    """Three seasons (weekly, daily, weekly) with a newsletter, some out and some to come
    on AS_OF; written either way (a whole-tree swap, or file by file in place). The swap
    runs these sequences under ``-m slow``: the default suite meets it in the tests with the
    ``writer`` fixture below and in the differential test's odd seed, after every kind of
    edit."""
    if request.param == "in place":
        monkeypatch.setattr(famfeeds.build.inplace, "PER_FILE_FROM", 1)
    return three_seasons(tmp_path / "project")


def three_seasons(root: Path) -> Project:
    """Three seasons (weekly, daily, weekly) with a newsletter, in a project at ``root``."""
    project = Project(root)
    project.show(**{"[author]": NEWSLETTER + "\n[author]"})
    project.season(1, premiere="2024-01-05", episodes=4)
    project.season(2, premiere="2024-02-26", cadence="daily", episodes=5)
    project.season(3, premiere="2024-03-08", episodes=3)
    return project


def from_nothing(
    project: Project, lock: bytes | None, run: Callable[..., Result], as_of: str, *extra: str
) -> tuple[dict[str, bytes], bytes]:
    """The same content built in a fresh folder (no cache, no output) from ``lock``."""
    fresh = Project(project.root.parent / "fresh")
    shutil.rmtree(fresh.root, ignore_errors=True)
    shutil.copytree(project.content, fresh.content)
    for folder in ("templates", "locale"):  # a project's own templates and catalogues
        if (project.root / folder).exists():
            shutil.copytree(project.root / folder, fresh.root / folder)
    if lock is not None:
        (fresh.root / "famfeeds.lock").write_bytes(lock)
    extra = tuple(a.replace(str(project.root), str(fresh.root)) for a in extra)
    result = run(*build_args(fresh, "--as-of", as_of, *extra))
    assert result.exit_code == 0, result.output
    return fresh.snapshot(), (fresh.root / "famfeeds.lock").read_bytes()


def rebuild(project: Project, run: Callable[..., Result], as_of: str = AS_OF, *extra: str) -> None:
    """Rebuild ``project`` in place and check it against a build from nothing."""
    lock_file = project.root / "famfeeds.lock"
    lock = lock_file.read_bytes() if lock_file.exists() else None
    result = run(*build_args(project, "--as-of", as_of, *extra))
    assert result.exit_code == 0, result.output
    expected, expected_lock = from_nothing(project, lock, run, as_of, *extra)
    got = project.snapshot()
    assert sorted(got) == sorted(expected)
    changed = [name for name in expected if got[name] != expected[name]]
    assert changed == []
    assert lock_file.read_bytes() == expected_lock


def edit(project: Project, season: int, number: int, **front: str) -> None:
    title = front.pop("title", f"Episode {number}")
    synopsis = front.pop("synopsis", f"Synopsis of episode {number}.")
    project.write(
        f"season-{season:02d}/{number:02d}-episode-{number}.md",
        episode_text(number, title, synopsis, **front),
    )


def test_every_kind_of_change_rebuilds_as_a_build_from_nothing(
    catalogue: Project, run: Callable[..., Result]
) -> None:
    project = catalogue
    rebuild(project, run)  # the first build
    rebuild(project, run)  # nothing changed: everything from the caches
    edit(project, 2, 3, synopsis="A *new* synopsis, with [a link](https://example.org/x).")
    rebuild(project, run)
    # A title at a season's end: the next season's first page links to it by name.
    edit(project, 1, 4, title="The Long Goodbye")
    rebuild(project, run)
    # A date moves (SEQUENCE rises), and moves back (it rises again; DTSTAMP too).
    lock = project.root / "famfeeds.lock"
    published = lock.read_bytes()
    edit(project, 3, 2, release='"2024-03-20"')
    rebuild(project, run)
    edit(project, 3, 2)
    rebuild(project, run)
    # The lock put back as it was (git checkout): the same records, other SEQUENCEs.
    lock.write_bytes(published)
    rebuild(project, run)
    # An episode added, then removed (its event stays, cancelled), a season described.
    edit(project, 2, 6, title="Bonus")
    rebuild(project, run)
    (project.content / "season-02/06-episode-6.md").unlink()
    rebuild(project, run)
    season = project.content / "season-01/season.toml"
    season.write_text(season.read_text() + 'description = "Where it all *began*."\n')
    rebuild(project, run)
    # Another day: states move on (a new issue, "next" passes to another episode).
    rebuild(project, run, "2024-03-09")
    rebuild(project, run, "2024-03-09")
    # The show itself, and a project template.
    show = project.content / "show.toml"
    show.write_text(show.read_text().replace('title = "Test Show"', 'title = "Renamed Show"'))
    rebuild(project, run, "2024-03-09")
    templates = project.root / "templates"
    templates.mkdir()
    shipped = Path(__file__).resolve().parents[1] / "templates"
    for name in ("episode.html.j2", "macros.html.j2"):
        text = (shipped / name).read_text()
        (templates / name).write_text(text.replace("</h1>", " (local)</h1>", 1))
    rebuild(project, run, "2024-03-09", "--templates", str(templates))
    rebuild(project, run, "2024-03-09", "--templates", str(templates))
    # Language.
    show.write_text(show.read_text().replace('language = "en"', 'language = "de"'))
    rebuild(project, run, "2024-03-09", "--templates", str(templates))


def test_an_output_file_deleted_by_hand_comes_back(
    catalogue: Project, run: Callable[..., Result]
) -> None:
    project = catalogue
    rebuild(project, run)
    rebuild(project, run)
    for name in ("s02/e03/index.html", "index.html", "calendar.ics", "episodes/s02e03.ics"):
        (project.output / name).unlink()
    rebuild(project, run)


def test_issues_rendered_in_several_processes_are_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first build shares many issues out between forked processes; each issue's bytes
    are what rendering it here gives."""
    import multiprocessing

    import famfeeds.build.pipeline
    from famfeeds.build.load import plan
    from famfeeds.build.project import template_environment

    project = Project(tmp_path / "project")
    project.show(**{"[author]": NEWSLETTER + "\n[author]"})
    project.season(1, premiere="2024-01-01", cadence="daily", episodes=70)
    project.season(2, premiere="2024-03-15", cadence="daily", episodes=70)
    planned = plan(project.content, None)
    issues = planned.published(planned.schedule.releases[-1].day)
    assert len(issues) >= 2 * famfeeds.build.speed.PARALLEL_FROM
    env = template_environment(None, "en")
    forks: list[int] = []
    real = multiprocessing.get_context

    def spy(method: str | None = None) -> object:
        forks.append(1)
        return real(method)

    monkeypatch.setattr(famfeeds.build.speed, "cpu_count", lambda: 2)
    monkeypatch.setattr(multiprocessing, "get_context", spy)
    indexes = list(range(len(issues)))
    shared = famfeeds.build.speed.render_encoded(issues, indexes, env)
    assert forks == [1]
    monkeypatch.setattr(famfeeds.build.speed, "PARALLEL_FROM", 10**9)
    alone = famfeeds.build.speed.render_encoded(issues, indexes, env)
    assert forks == [1]
    assert len(shared) == len(issues) and shared == alone


# More kinds of change (an adversarial review of issue 16) ------------------------------


@pytest.fixture(params=["swap", "in place"])
def writer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Either writer: a whole-tree swap, or file by file in place."""
    if request.param == "in place":
        monkeypatch.setattr(famfeeds.build.inplace, "PER_FILE_FROM", 1)
    return str(request.param)


def test_a_release_that_stops_sharing_its_day_with_another_seasons_moves_in_the_feeds(
    tmp_path: Path, run: Callable[..., Result], writer: str
) -> None:
    """A release's rank among the releases of its day (a second apart) comes from earlier
    seasons: the feeds' memo key must follow it though the feeds show none of their
    episodes. (Failed at e01c60c: stale feeds in place; with the swap, "feed.json came out
    other than an earlier build made it" on every build until the cache was deleted.)"""
    project = Project(tmp_path / "project")
    project.show(**{"title =": "feed_entries = 3\ntitle ="})
    project.season(1, premiere="2024-01-05", episodes=4)  # the last on 2024-01-26
    project.season(2, premiere="2024-01-26", episodes=3)  # the feed shows only these
    rebuild(project, run)  # S2 E1 is the second release of 2024-01-26: a second later
    edit(project, 1, 4, release='"2024-01-25"', date_checked="true")
    rebuild(project, run)


def test_a_rank_that_moves_an_updated_stamp_past_midnight_moves_the_sitemap(
    tmp_path: Path, run: Callable[..., Result], writer: str
) -> None:
    """The rank moves Release.updated a second, so an episode updated at 23:59:59 has its
    sitemap lastmod on the next day. (Failed at e01c60c: sitemap_inputs missed the rank.)"""
    project = Project(tmp_path / "project")
    project.show()
    project.season(1, premiere="2024-01-05", episodes=1)
    project.season(2, premiere="2024-01-05", episodes={1: {"updated": "2024-01-05T23:59:59"}})
    rebuild(project, run)
    season = project.content / "season-01/season.toml"
    season.write_text(season.read_text().replace("2024-01-05", "2023-12-29"))
    rebuild(project, run)


IN_PLACE_ONLY = pytest.mark.parametrize("catalogue", ["in place"], indirect=True)
"""For the longer sequences: the writer that trusts what it finds in output/ (the swap
does the same renders, and the tests above run both)."""


def show_edit(project: Project, old: str, new: str) -> None:
    show = project.content / "show.toml"
    text = show.read_text()
    assert old in text, old
    show.write_text(text.replace(old, new, 1))


@IN_PLACE_ONLY
def test_show_settings_that_pages_feeds_calendars_and_issues_use(
    catalogue: Project, run: Callable[..., Result]
) -> None:
    project = catalogue
    rebuild(project, run)
    for old, new in [
        ('sender_name = "Test weekly"', 'sender_name = "Test daily"\nreply_to = "r@example.net"'),
        ("[newsletter]", '[newsletter]\nsignup_url = "https://example.net/signup"'),
        ("[newsletter]", '[newsletter]\nservice_url = "https://example.net/svc"'),
        ("title =", 'feed_entries = 3\nartwork = "https://example.net/a.png"\ntitle ='),
        ("title =", "feed_stylesheet = true\ntitle ="),
        ("[newsletter]", "[calendar]\nreminder = 30\n[newsletter]"),
        ("reminder = 30", "reminder = 30\nall_day = true"),
        ('"America/New_York"', '"Asia/Tokyo"'),
        ('service = "Example+"', 'service = "Other+"\nhomepage = "https://example.net/h"'),
    ]:
        show_edit(project, old, new)
        rebuild(project, run)
    text = (project.content / "show.toml").read_text()
    start = text.index("[newsletter]")
    end = text.index("[", start + 1)
    (project.content / "show.toml").write_text(text[:start] + text[end:])
    rebuild(project, run)


PO = """msgid ""
msgstr ""
"Language: en\\n"
"Content-Type: text/plain; charset=utf-8\\n"

#, python-format
msgid "Episode %(number)d of %(total)d"
msgstr "Part %(number)d of %(total)d{mark}"

#, python-format
msgid "%(code)s \\u00b7 %(title)s"
msgstr "%(code)s: %(title)s{mark}"
"""


@IN_PLACE_ONLY
def test_a_projects_own_catalogue_and_base_template(
    catalogue: Project, run: Callable[..., Result]
) -> None:
    project = catalogue
    rebuild(project, run)
    po = project.root / "locale/en/LC_MESSAGES/famfeeds.po"
    po.parent.mkdir(parents=True)
    po.write_text(PO.replace("\\\\u00b7", "\u00b7").format(mark=""))
    rebuild(project, run)
    po.write_text(PO.replace("\\\\u00b7", "\u00b7").format(mark="!"))
    rebuild(project, run)
    templates = project.root / "templates"
    templates.mkdir()
    shipped = Path(__file__).resolve().parents[1] / "templates"
    base = (shipped / "base.html.j2").read_text()
    (templates / "base.html.j2").write_text(base.replace("</body>", "<!-- a -->\n</body>", 1))
    rebuild(project, run)
    (templates / "base.html.j2").write_text(base.replace("</body>", "<!-- b -->\n</body>", 1))
    rebuild(project, run)
    (templates / "base.html.j2").unlink()
    rebuild(project, run)


@IN_PLACE_ONLY
def test_an_updated_stamp_crossing_the_reference_date_back_and_forth(
    catalogue: Project, run: Callable[..., Result]
) -> None:
    project = catalogue
    edit(project, 1, 2, updated='"2024-03-05"')
    rebuild(project, run, "2024-03-04")
    rebuild(project, run, "2024-03-05")
    rebuild(project, run, "2024-03-04")
    rebuild(project, run, "2024-03-06")


@IN_PLACE_ONLY
def test_seasons_sharing_a_day_cancelled_finales_moves_renumbering_removal(
    catalogue: Project, run: Callable[..., Result]
) -> None:
    project = catalogue
    rebuild(project, run)
    # Two seasons on one day (an issue mixing seasons), then one cancelled.
    edit(project, 3, 1, release='"2024-02-28"')
    rebuild(project, run)
    edit(project, 2, 3, status='"cancelled"')
    rebuild(project, run)
    edit(project, 2, 5, status='"cancelled"')  # the finale moves to episode 4
    rebuild(project, run)
    # A release moved across the next season's premiere.
    edit(project, 1, 4, release='"2024-03-01"', date_checked="true")
    rebuild(project, run)
    # A season renumbered; then one removed.
    season = project.content / "season-03/season.toml"
    season.write_text(season.read_text().replace("number = 3", "number = 7"))
    (project.content / "season-03").rename(project.content / "season-07")
    rebuild(project, run)
    shutil.rmtree(project.content / "season-02")
    rebuild(project, run)
    rebuild(project, run, "2024-03-20")


def test_previews_and_two_output_folders_built_alternately(
    catalogue: Project, run: Callable[..., Result]
) -> None:
    project = catalogue
    other = Project(project.root)
    other.output = project.root / "elsewhere"
    preview = ("--base-url", "http://localhost:8000/")
    rebuild(project, run)
    rebuild(other, run)
    rebuild(other, run, AS_OF, *preview)
    edit(project, 2, 3, synopsis="Changed.")
    rebuild(project, run, AS_OF, *preview)
    rebuild(other, run)
    rebuild(project, run)
    rebuild(other, run, AS_OF, *preview)
    edit(project, 2, 3)
    rebuild(other, run)
    rebuild(project, run, "2024-03-09")
    rebuild(other, run, "2024-03-01")
    rebuild(project, run)


def test_caches_truncated_corrupted_or_deleted_between_builds(
    catalogue: Project, run: Callable[..., Result]
) -> None:
    project = catalogue
    cache = project.root / ".famfeeds-cache"
    rebuild(project, run)
    for memo in cache.glob("memo-*.pickle"):
        memo.write_bytes(memo.read_bytes()[:100])
    edit(project, 2, 3, synopsis="Changed.")
    rebuild(project, run)
    (cache / "issues.index").write_bytes(b"garbage")
    edit(project, 2, 3, synopsis="Changed again.")
    rebuild(project, run)
    for memo in cache.glob("memo-*.pickle"):
        memo.unlink()
    (cache / "issues.index").unlink()
    rebuild(project, run)
    rebuild(project, run, "2024-03-09")
    entries = sorted((cache / "issues").glob("*.bin"))
    assert entries
    for entry in entries:  # same size, in place: the folder's stat, so the index, trusted
        entry.write_bytes(b"x" * entry.stat().st_size)
    rebuild(project, run, "2024-03-09")
    shutil.rmtree(project.output)  # every issue's bytes needed again (failed at e01c60c)
    rebuild(project, run, "2024-03-09")
    rebuild(project, run, "2024-03-09")


@IN_PLACE_ONLY
def test_an_edit_that_keeps_size_and_modification_time(
    catalogue: Project, run: Callable[..., Result]
) -> None:
    import os

    project = catalogue
    rebuild(project, run)
    path = project.content / "season-02/03-episode-3.md"
    edit(project, 2, 3, synopsis="Version AAAA.")
    stat = path.stat()
    rebuild(project, run)
    edit(project, 2, 3, synopsis="Version BBBB.")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    rebuild(project, run)


@IN_PLACE_ONLY
def test_editors_notes_added_edited_and_removed(
    catalogue: Project, run: Callable[..., Result]
) -> None:
    project = catalogue
    rebuild(project, run)
    project.write("season-02/newsletter/2024-02-27.md", "A *note*.\n")
    rebuild(project, run)
    project.write("season-02/newsletter/2024-02-27.md", "A *NOTE*.\n")
    rebuild(project, run)
    project.write("season-02/newsletter/2024-02-27.md", "A longer note this time.\n")
    rebuild(project, run)
    project.write("season-02/newsletter/2024-02-28.md", "Another.\n")
    rebuild(project, run)
    (project.content / "season-02/newsletter/2024-02-27.md").unlink()
    rebuild(project, run)


def test_a_binary_file_among_the_templates_is_no_traceback(
    tmp_path: Path, run: Callable[..., Result]
) -> None:
    """A Finder .DS_Store under templates/ (failed at e01c60c: UnicodeDecodeError in
    issue_cache.templates_digest, which reads every file there as text)."""
    project = Project(tmp_path / "project")
    project.show()
    project.season(1, episodes=2)
    templates = project.root / "templates"
    templates.mkdir()
    (templates / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1\xff\xfe\x80")
    rebuild(project, run)


def test_two_shows_side_by_side_sharing_cache_and_lock(
    tmp_path: Path, run: Callable[..., Result], writer: str
) -> None:
    root = tmp_path / "project"
    first = Project(root)
    second = Project(root)
    second.content = root / "other"
    second.output = root / "other-output"
    first.show(**{"[author]": NEWSLETTER + "\n[author]"})
    second.show(**{'"test-show"': '"other-show"', "[author]": NEWSLETTER + "\n[author]"})
    for project in (first, second):
        project.season(1, premiere="2024-01-05", episodes=4)
        project.season(2, premiere="2024-02-26", cadence="daily", episodes=5)
    preview = ("--base-url", "http://localhost:8000/")
    for extra in ((), preview):
        rebuild(first, run, AS_OF, *extra)
        rebuild(second, run, AS_OF, *extra)
        edit(second, 2, 3, synopsis="Only the second show.")
        rebuild(first, run, AS_OF, *extra)
        rebuild(second, run, AS_OF, *extra)
        edit(first, 2, 3, synopsis="Only the second show.")
        rebuild(second, run, AS_OF, *extra)
        rebuild(first, run, AS_OF, *extra)
