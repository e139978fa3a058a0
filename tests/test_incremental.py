"""Rebuilds that reuse earlier work (parsed records, remembered pages, events and issues,
files left in place) give exactly what a build from nothing gives: every output file and
famfeeds.lock, byte for byte, after each kind of change a user makes."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

import famfeeds.inplace
from support import Project, build_args, episode_text

NEWSLETTER = """
[newsletter]
sender_name = "Test weekly"
sender_address = "news@example.net"
unsubscribe_url = "https://example.net/unsubscribe?token={token}"
"""
AS_OF = "2024-03-03"


@pytest.fixture(params=["swap", "in place"])
def catalogue(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Project:
    """Three seasons (weekly, daily, weekly) with a newsletter, some out and some to come
    on AS_OF; written either way (a whole-tree swap, or file by file in place)."""
    if request.param == "in place":
        monkeypatch.setattr(famfeeds.inplace, "PER_FILE_FROM", 1)
    project = Project(tmp_path / "project")
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
    if (project.root / "templates").exists():
        shutil.copytree(project.root / "templates", fresh.root / "templates")
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

    import famfeeds.build
    from famfeeds.planning import plan
    from famfeeds.project import template_environment

    project = Project(tmp_path / "project")
    project.show(**{"[author]": NEWSLETTER + "\n[author]"})
    project.season(1, premiere="2024-01-01", cadence="daily", episodes=70)
    project.season(2, premiere="2024-03-15", cadence="daily", episodes=70)
    planned = plan(project.content, None)
    issues = planned.published(planned.schedule.releases[-1].day)
    assert len(issues) >= 2 * famfeeds.build.PARALLEL_FROM
    env = template_environment(None, "en")
    forks: list[int] = []
    real = multiprocessing.get_context

    def spy(method: str | None = None) -> object:
        forks.append(1)
        return real(method)

    monkeypatch.setattr(famfeeds.build, "cpu_count", lambda: 2)
    monkeypatch.setattr(multiprocessing, "get_context", spy)
    indexes = list(range(len(issues)))
    shared = famfeeds.build.render_encoded(issues, indexes, env)
    assert forks == [1]
    monkeypatch.setattr(famfeeds.build, "PARALLEL_FROM", 10**9)
    alone = famfeeds.build.render_encoded(issues, indexes, env)
    assert forks == [1]
    assert len(shared) == len(issues) and shared == alone
