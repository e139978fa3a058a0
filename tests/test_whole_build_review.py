"""An adversarial review of the whole-build memo (the evaluator's entry for
famfeeds.build.pipeline.render_files, keyed by its RenderContext): after each change below,
a rebuild must give exactly the output (and famfeeds.lock) of a build from nothing of the
same content. Written in place (famfeeds.build.inplace.PER_FILE_FROM = 1), the path on which
the whole-build entry can hit without rendering anything, unless a test says otherwise."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

import famfeeds.build.inplace
from support import Project, build_args
from test_incremental import (
    AS_OF,
    PO,
    edit,
    from_nothing,
    rebuild,
    show_edit,
    three_seasons,
)


@pytest.fixture(params=["in place"])
def catalogue(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Project:
    """As test_incremental's: three seasons (weekly, daily, weekly) with a newsletter."""
    if request.param == "in place":
        monkeypatch.setattr(famfeeds.build.inplace, "PER_FILE_FROM", 1)
    return three_seasons(tmp_path / "project")


BOTH = pytest.mark.parametrize(
    "catalogue", [pytest.param("swap", marks=pytest.mark.slow), "in place"], indirect=True
)
"""Both writers; the swap under ``-m slow`` (the default suite meets it in
test_incremental and in the differential test's odd seed, after every kind of edit)."""


@pytest.fixture
def hits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The reference dates of the builds whose whole build came from the memo (a probe
    is only worth something if the change it makes meets a hit when the key misses it)."""
    from famfeeds.build.evaluate import Evaluator, LazyFiles

    found: list[str] = []
    real = Evaluator.__call__

    def counting(self: Evaluator, step: Callable[..., object], /, *args: Any) -> object:
        made = real(self, step, *args)
        if step.__name__ == "render_files" and isinstance(made, LazyFiles):
            found.append(args[0].as_of.isoformat())
        return made

    monkeypatch.setattr(Evaluator, "__call__", counting)
    return found


def whole_build_hit(project: Project) -> bool:
    """Whether the next build's render would find the whole build in the memo (checked
    without writing anything: render() alone)."""
    from famfeeds.build.evaluate import LazyFiles
    from famfeeds.build.pipeline import render

    built = render(project.content, as_of=date.fromisoformat(AS_OF))
    return any(isinstance(part, LazyFiles) for part in built.files.parts)  # type: ignore[attr-defined]


# The reference date ---------------------------------------------------------------------


def test_the_reference_date_moves_while_no_state_changes(
    catalogue: Project, run: Callable[..., Result], hits: list[str]
) -> None:
    project = catalogue
    for day in (
        "2024-03-03",
        "2024-03-04",
        "2024-03-04",
        "2024-03-03",
        "2024-03-05",
        "2024-03-07",
        "2024-03-03",
    ):
        rebuild(project, run, day)
    assert hits  # the whole build came from the memo at least once


def test_source_date_epoch_gives_the_day(
    catalogue: Project,
    run: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
    hits: list[str],
) -> None:
    """No --as-of: SOURCE_DATE_EPOCH, as a day in the show's zone (New York)."""
    project = catalogue
    lock_file = project.root / "famfeeds.lock"
    for epoch, day in [
        ("1709607600", "2024-03-04"),  # 2024-03-05T03:00Z: still the 4th in New York
        ("1709658000", "2024-03-05"),  # 2024-03-05T17:00Z
        ("1709690400", "2024-03-05"),  # 2024-03-06T02:00Z: the 5th in New York
        ("1709607600", "2024-03-04"),
        ("1710000000", "2024-03-09"),
    ]:
        monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
        lock = lock_file.read_bytes() if lock_file.exists() else None
        result = run(*build_args(project))
        assert result.exit_code == 0, result.output
        monkeypatch.delenv("SOURCE_DATE_EPOCH")
        expected, expected_lock = from_nothing(project, lock, run, day)
        assert project.snapshot() == expected, epoch
        assert lock_file.read_bytes() == expected_lock
    assert hits  # the whole build came from the memo at least once


# Addresses and previews -------------------------------------------------------------------


@BOTH
def test_previews_at_several_addresses_between_published_builds(
    catalogue: Project, run: Callable[..., Result]
) -> None:
    project = catalogue
    a = ("--base-url", "http://localhost:8000/")
    b = ("--base-url", "http://127.0.0.1:9000/sub/")
    rebuild(project, run)
    rebuild(project, run, AS_OF, *a)
    rebuild(project, run, AS_OF, *b)
    edit(project, 2, 3, synopsis="Changed for the preview.")
    rebuild(project, run, AS_OF, *a)  # the lock is not saved: SEQUENCE rises in preview only
    rebuild(project, run, AS_OF, *b)
    edit(project, 2, 3)  # back: the preview's states are those of the first build again
    rebuild(project, run, AS_OF, *a)
    rebuild(project, run)
    rebuild(project, run, "2024-03-09", *b)
    rebuild(project, run, AS_OF, *b)


def test_serve_style_preview_folder_beside_the_published_output(
    catalogue: Project, run: Callable[..., Result], hits: list[str]
) -> None:
    """What `famfeeds serve` does (famfeeds.build.preview.run): build into .famfeeds-preview at the
    server's address, or at the published one (--public-urls), never saving the lock."""
    from famfeeds.build.pipeline import BuildRequest, build

    project = catalogue
    preview = Project(project.root)
    preview.output = project.root / ".famfeeds-preview"
    lock_file = project.root / "famfeeds.lock"
    day = date.fromisoformat(AS_OF)

    def serve_build(base_url: str | None) -> None:
        before = lock_file.read_bytes() if lock_file.exists() else None
        build(
            BuildRequest(
                project.content,
                preview.output,
                as_of=day,
                base_url=base_url,
                save_lock=False,
                sync=False,
            )
        )
        after = lock_file.read_bytes() if lock_file.exists() else None
        assert after == before  # a preview never saves the lock
        extra = ("--base-url", base_url) if base_url else ()
        expected, _ = from_nothing(project, before, run, AS_OF, *extra)
        assert preview.snapshot() == expected

    rebuild(project, run)
    serve_build("http://127.0.0.1:8000/")
    serve_build(None)
    edit(project, 1, 2, title="Retitled")
    serve_build(None)  # public URLs: the published memo, states not saved
    serve_build("http://127.0.0.1:8000/")
    rebuild(project, run)
    edit(project, 1, 2)
    serve_build(None)
    rebuild(project, run)
    serve_build(None)
    assert hits  # the whole build came from the memo at least once


# Templates and catalogues ------------------------------------------------------------------


@BOTH
def test_templates_folders_holding_the_same_names(
    catalogue: Project, run: Callable[..., Result], tmp_path: Path, hits: list[str]
) -> None:
    project = catalogue
    shipped = Path(__file__).resolve().parents[1] / "templates"
    themes = {}
    for theme in ("a", "b"):
        folder = themes[theme] = tmp_path / "themes" / theme
        folder.mkdir(parents=True)
        for name in ("episode.html.j2", "newsletter.css", "site.css"):
            text = (shipped / name).read_text()
            (folder / name).write_text(
                text + f"\n/* theme {theme} */\n"
                if name.endswith("css")
                else text.replace("</h1>", f" ({theme})</h1>", 1)
            )
    rebuild(project, run)
    for theme in ("a", "b", "a", "b"):
        rebuild(project, run, AS_OF, "--templates", str(themes[theme]))
    # Theme b made a copy of a (same names, same bytes), then a changed in place keeping
    # its size and modification time.
    shutil.rmtree(themes["b"])
    shutil.copytree(themes["a"], themes["b"])
    rebuild(project, run, AS_OF, "--templates", str(themes["b"]))
    rebuild(project, run, AS_OF, "--templates", str(themes["a"]))
    css = themes["a"] / "newsletter.css"
    info = css.stat()
    css.write_text(css.read_text().replace("theme a", "theme A"))
    os.utime(css, ns=(info.st_atime_ns, info.st_mtime_ns))
    rebuild(project, run, AS_OF, "--templates", str(themes["a"]))
    rebuild(project, run)  # back to the shipped ones
    assert hits  # the whole build came from the memo at least once


@BOTH
def test_a_template_in_a_linked_subfolder_of_the_projects_templates(
    catalogue: Project, run: Callable[..., Result]
) -> None:
    """A project's templates/ with a subfolder that is a symbolic link (a shared theme),
    included by an episode page: the templates key reads the files behind the link
    (Jinja's own listing does not follow it)."""
    project = catalogue
    shipped = Path(__file__).resolve().parents[1] / "templates"
    templates = project.root / "templates"
    templates.mkdir()
    theme = project.root / "theme-partials"
    theme.mkdir()
    (theme / "extra.html").write_text("<p>Partial one</p>\n")
    (templates / "partials").symlink_to(theme, target_is_directory=True)
    text = (shipped / "episode.html.j2").read_text()
    (templates / "episode.html.j2").write_text(
        text.replace("</h1>", '</h1>\n{% include "partials/extra.html" %}', 1)
    )
    rebuild(project, run)
    (theme / "extra.html").write_text("<p>Partial two</p>\n")
    rebuild(project, run)


def test_a_projects_catalogues_for_a_language_with_a_territory(
    catalogue: Project, run: Callable[..., Result]
) -> None:
    project = catalogue
    show_edit(project, 'language = "en"', 'language = "de-AT"')
    rebuild(project, run)
    de = project.root / "locale/de/LC_MESSAGES/famfeeds.po"
    de_at = project.root / "locale/de_AT/LC_MESSAGES/famfeeds.po"
    po = PO.replace("\\\\u00b7", "\u00b7").replace("Language: en", "Language: de")
    de.parent.mkdir(parents=True)
    de.write_text(po.format(mark=" (de)"))
    rebuild(project, run)
    de_at.parent.mkdir(parents=True)
    de_at.write_text(po.format(mark=" (AT)"))
    rebuild(project, run)
    de.unlink()
    rebuild(project, run)
    shutil.move(de_at, de)  # the same bytes, now the language's catalogue, not the territory's
    rebuild(project, run)
    # A catalogue of another language than the show's changes nothing.
    fr = project.root / "locale/fr/LC_MESSAGES/famfeeds.po"
    fr.parent.mkdir(parents=True)
    fr.write_text(po.replace("Language: de", "Language: fr").format(mark=" (fr)"))
    rebuild(project, run)


# The show and the records ------------------------------------------------------------------


def test_show_fields_that_few_outputs_use(catalogue: Project, run: Callable[..., Result]) -> None:
    project = catalogue
    rebuild(project, run)
    for old, new in [
        ('name = "Tester"', 'name = "Tester"\nemail = "t@example.net"'),
        ('email = "t@example.net"', 'email = "t@example.net"\nuri = "https://example.net/t"'),
        ('description = "A show for tests."', 'description = "A show for *tests*."'),
        ("[newsletter]", '[newsletter]\nunsubscribe_mailto = "u@example.net"'),
        ("[newsletter]", '[newsletter]\nbounce_address = "b@example.net"\nverp = true'),
        ("[newsletter]", '[newsletter]\nsmtp_url = "smtp://mail.example.net:587"'),
        ("[author]", "[limits]\ntitle_characters = 150\n[author]"),
        ("id_date = 2020-01-01", "id_date = 2021-06-01"),
        ('slug = "test-show"', 'slug = "renamed-show"'),
    ]:
        show_edit(project, old, new)
        rebuild(project, run)


def test_editors_notes_on_a_preview_day_and_a_stray_note(
    catalogue: Project, run: Callable[..., Result]
) -> None:
    project = catalogue
    rebuild(project, run)
    project.write("season-03/newsletter/2024-03-01.md", "Coming *soon*.\n")  # preview day
    rebuild(project, run)
    project.write("season-01/newsletter/2024-03-02.md", "Stray.\n")  # no issue that day
    rebuild(project, run)
    shutil.move(
        project.content / "season-01/newsletter/2024-03-02.md",
        project.content / "season-01/newsletter/2024-02-27.md",
    )  # now a note of season 2's release day, kept in season 1's folder
    rebuild(project, run)
    project.write("season-03/newsletter/2024-03-01.md", "Coming *later*.\n")
    rebuild(project, run, "2024-02-29")  # the issue not out yet
    rebuild(project, run)


def test_files_renamed_with_the_same_records(
    catalogue: Project, run: Callable[..., Result], hits: list[str]
) -> None:
    project = catalogue
    rebuild(project, run)
    s2 = project.content / "season-02"
    (s2 / "03-episode-3.md").rename(s2 / "003-episode-3.md")  # same number, same slug
    rebuild(project, run)
    (s2 / "003-episode-3.md").rename(s2 / "03-the-third.md")  # another slug
    rebuild(project, run)
    s2.rename(project.content / "season-002")  # the same season number
    rebuild(project, run)
    (project.content / "season-002").rename(s2)
    (s2 / "03-the-third.md").rename(s2 / "03-episode-3.md")
    rebuild(project, run)
    assert hits  # the whole build came from the memo at least once


# The output and the lock, by hand ----------------------------------------------------------


@BOTH
def test_output_files_replaced_by_hand_as_editors_save(
    catalogue: Project, run: Callable[..., Result], hits: list[str]
) -> None:
    """A file replaced by a rename (another inode), same size and modification time."""
    project = catalogue
    rebuild(project, run)
    rebuild(project, run)
    for name in (
        "s02/e03/index.html",
        "calendar.ics",
        "newsletter/2024-02-27.html",
        "feed.xml",
        "sitemap.xml",
    ):
        path = project.output / name
        if not path.exists():
            continue
        data, info = path.read_bytes(), path.stat()
        swapped = data.replace(b"e", b"E", 1)
        assert swapped != data
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(swapped)
        os.utime(temporary, ns=(info.st_atime_ns, info.st_mtime_ns))
        temporary.replace(path)
    rebuild(project, run)
    assert hits  # the whole build came from the memo at least once


def test_output_files_edited_in_place_by_hand(
    catalogue: Project, run: Callable[..., Result]
) -> None:
    """Edited in place (same inode, size and mtime): famfeeds.build.inplace documents that such
    a file is kept until its content changes or the index is deleted. Checked: the index
    deleted, the rebuild gives the build from nothing."""
    project = catalogue
    rebuild(project, run)
    path = project.output / "s02/e03/index.html"
    data, info = path.read_bytes(), path.stat()
    with path.open("r+b") as handle:
        handle.write(b"X")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert path.read_bytes() != data
    shutil.rmtree(project.root / ".famfeeds-cache" / famfeeds.build.inplace.INDEX_DIR)
    rebuild(project, run)


def test_the_lock_edited_by_hand(
    catalogue: Project, run: Callable[..., Result], hits: list[str]
) -> None:
    project = catalogue
    lock = project.root / "famfeeds.lock"
    rebuild(project, run)
    rebuild(project, run)
    text = lock.read_text()
    # A SEQUENCE raised by hand, same size, same modification time.
    info = lock.stat()
    changed = text.replace("sequence = 0", "sequence = 7", 1)
    assert changed != text
    lock.write_text(changed)
    os.utime(lock, ns=(info.st_atime_ns, info.st_mtime_ns))
    rebuild(project, run)
    # A live event's summary and start (the calendar takes them from the records).
    text = lock.read_text()
    lock.write_text(text.replace('summary = "', 'summary = "Hand: ', 1))
    rebuild(project, run)
    # A DTSTAMP moved by hand.
    text = lock.read_text()
    start = text.index("dtstamp = ") + len("dtstamp = ")
    lock.write_text(text[:start] + "2023-01-01T00:00:00Z" + text[start + 20 :])
    rebuild(project, run)
    # An entry deleted: that event is published afresh.
    text = lock.read_text()
    first = text.index("\n[events.")
    second = text.index("\n[events.", first + 1)
    lock.write_text(text[:first] + text[second:])
    rebuild(project, run)
    # Another show's events added (a shared lock), then the whole lock deleted.
    other = lock.read_text().split("\n[events.", 1)[1]
    lock.write_text(lock.read_text() + "\n[events." + other.replace("test-show-", "other-show-"))
    rebuild(project, run)
    lock.unlink()
    rebuild(project, run)
    assert hits  # the whole build came from the memo at least once


def test_the_lock_deleted_when_the_same_states_come_back(
    catalogue: Project, run: Callable[..., Result], hits: list[str]
) -> None:
    """Built first from no lock; the lock deleted and the same day built again: every event
    is published afresh with the same SEQUENCE and DTSTAMP, so the whole build is as the
    last one (nothing to write in output/), but famfeeds.lock must come back."""
    project = catalogue
    rebuild(project, run)
    (project.root / "famfeeds.lock").unlink()
    rebuild(project, run)
    assert (project.root / "famfeeds.lock").exists()
    assert hits  # the whole build came from the memo at least once


def test_the_published_address_becomes_a_former_preview_address(
    catalogue: Project, run: Callable[..., Result]
) -> None:
    """show.toml's base_url changed to the address a preview was built at: the two builds
    share a memo file, and the same inputs."""
    project = catalogue
    rebuild(project, run)
    rebuild(project, run, AS_OF, "--base-url", "https://preview.example.net/test/")
    show_edit(project, "https://shows.example.net/test/", "https://preview.example.net/test/")
    rebuild(project, run)
    rebuild(project, run, AS_OF, "--base-url", "https://shows.example.net/test/")
    show_edit(project, "https://preview.example.net/test/", "https://shows.example.net/test/")
    rebuild(project, run)


def test_strict_refusals_between_builds(catalogue: Project, run: Callable[..., Result]) -> None:
    project = catalogue
    rebuild(project, run, AS_OF, "--strict")
    before = project.snapshot()
    project.write("season-01/newsletter/2024-03-02.md", "Stray.\n")  # a warning
    result = run(*build_args(project, "--as-of", AS_OF, "--strict"))
    assert result.exit_code != 0
    assert project.snapshot() == before
    rebuild(project, run)
    (project.content / "season-01/newsletter/2024-03-02.md").unlink()
    rebuild(project, run, AS_OF, "--strict")


# Caches ----------------------------------------------------------------------------------


def test_a_cache_folder_copied_between_projects(
    catalogue: Project, run: Callable[..., Result], tmp_path: Path, hits: list[str]
) -> None:
    first = catalogue
    second = Project(tmp_path / "second")
    shutil.copytree(first.content, second.content)
    show_edit(second, 'title = "Test Show"', 'title = "Second Show"')
    edit(second, 2, 3, synopsis="Only in the second.")
    rebuild(first, run)
    rebuild(second, run)
    # The second project given the first's cache, the first the second's.
    shutil.rmtree(second.root / ".famfeeds-cache")
    shutil.copytree(first.root / ".famfeeds-cache", second.root / ".famfeeds-cache")
    rebuild(second, run)
    shutil.rmtree(first.root / ".famfeeds-cache")
    shutil.copytree(second.root / ".famfeeds-cache", first.root / ".famfeeds-cache")
    rebuild(first, run)
    # The same content in both, output folders at the same place relative to each:
    # the whole build is known to both caches.
    edit(second, 2, 3)
    show_edit(second, 'title = "Second Show"', 'title = "Test Show"')
    rebuild(second, run)
    rebuild(first, run)
    # A whole project copied (content, output, lock and cache), then edited.
    third = Project(tmp_path / "third")
    shutil.copytree(first.root, third.root, symlinks=True)
    edit(third, 1, 1, title="Copied and changed")
    rebuild(third, run)
    edit(third, 1, 1)
    rebuild(third, run)
    assert hits  # the whole build came from the memo at least once


def test_letters_through_the_python_api_after_a_hit(catalogue: Project, tmp_path: Path) -> None:
    """build()'s letters when nothing was rendered (computed once asked for) are those
    of a build from nothing, and their files are the ones written. (Compared personalised:
    the raw HTML and text hold markers derived from the records' JSON, source paths
    included, so they differ between project folders by design; they never reach a file.)"""
    from famfeeds.build.pipeline import BuildRequest, build

    project = catalogue
    day = date.fromisoformat(AS_OF)
    build(BuildRequest(project.content, project.output, as_of=day, sync=False))
    assert whole_build_hit(project)
    result, _ = build(BuildRequest(project.content, project.output, as_of=day, sync=False))
    assert result.letters.made is None  # type: ignore[attr-defined]  (nothing rendered)
    got = [
        (x.item.issue.slug, x.item.subject, x.item.personalise("Ann", "tok"), dict(x.files))
        for x in result.letters
    ]
    fresh = Project(tmp_path / "fresh-api")
    shutil.copytree(project.content, fresh.content)
    shutil.copy(project.root / "famfeeds.lock", fresh.root / "famfeeds.lock")
    other, _ = build(BuildRequest(fresh.content, fresh.output, as_of=day, sync=False))
    expected = [
        (x.item.issue.slug, x.item.subject, x.item.personalise("Ann", "tok"), dict(x.files))
        for x in other.letters
    ]
    assert got == expected
    written = project.snapshot()
    for _, _, _, files in got:
        for name, data in files.items():
            assert written[name] == data


# Libraries ---------------------------------------------------------------------------------


@pytest.fixture
def cssselect_upgrade(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Stands for `pip install -U cssselect` between two builds: the version famfeeds reads
    from the installed distributions changes, and so does how one selector translates
    (here: `.brand` matches nothing). cssselect is one of the libraries the issue cache
    lists as shaping what famfeeds makes (famfeeds.build.keys.LIBRARIES)."""
    import cssselect
    import premailer.cache

    from famfeeds.build import keys

    def clear() -> None:
        keys.versions.cache_clear()
        keys.code_digest.cache_clear()
        premailer.cache.cache.clear()

    def upgrade() -> None:
        installed = keys._installed()
        assert "cssselect" in installed
        monkeypatch.setitem(installed, "cssselect", installed["cssselect"] + ".post99")
        original = cssselect.GenericTranslator.css_to_xpath

        def translate(self: object, css: str, prefix: str = "descendant-or-self::") -> str:
            if css.strip() == ".brand":
                return prefix + "no-such-element"
            return original(self, css, prefix)  # type: ignore[arg-type]

        monkeypatch.setattr(cssselect.GenericTranslator, "css_to_xpath", translate)
        clear()

    yield upgrade
    clear()  # before monkeypatch puts the real ones back (it tears down after this)


@BOTH
def test_a_library_that_shapes_the_newsletter_upgraded(
    catalogue: Project,
    run: Callable[..., Result],
    cssselect_upgrade: Callable[[], None],
) -> None:
    """Every library on the one list (famfeeds.build.keys.LIBRARIES) invalidates the render
    memo, which can stand for the whole build, newsletter issues included."""
    rebuilt_after(catalogue, run, cssselect_upgrade, "newsletter/2024-02-27.html")


def rebuilt_after(
    project: Project, run: Callable[..., Result], change: Callable[[], None], shows: str
) -> None:
    """Build, make ``change`` (outside the project), check that a build from nothing
    shows it in the file ``shows``, and rebuild as a build from nothing would."""
    rebuild(project, run)
    before = (project.output / shows).read_bytes()
    change()
    lock = (project.root / "famfeeds.lock").read_bytes()
    expected, _ = from_nothing(project, lock, run, AS_OF)
    assert expected[shows] != before  # the change shows
    rebuild(project, run)


@pytest.fixture
def zone_rules_update(tmp_path: Path) -> Iterator[Callable[[], None]]:
    """Stands for an update of the time zone database Python reads (on Debian, the
    system's /usr/share/zoneinfo, searched before the tzdata package): America/New_York
    given other rules (Chicago's, an hour behind)."""
    import zoneinfo

    def update() -> None:
        found = [Path(p) / "America/Chicago" for p in zoneinfo.TZPATH]
        source = next((p for p in found if p.is_file()), None)
        if source is None:
            from importlib import resources

            data = resources.files("tzdata").joinpath("zoneinfo/America/Chicago").read_bytes()
        else:
            data = source.read_bytes()
        folder = tmp_path / "tz" / "America"
        folder.mkdir(parents=True)
        (folder / "New_York").write_bytes(data)
        zoneinfo.reset_tzpath(to=[str(tmp_path / "tz"), *zoneinfo.TZPATH])
        zoneinfo.ZoneInfo.clear_cache()

    yield update
    zoneinfo.reset_tzpath()
    zoneinfo.ZoneInfo.clear_cache()


@BOTH
def test_the_time_zone_rules_updated(
    catalogue: Project,
    run: Callable[..., Result],
    zone_rules_update: Callable[[], None],
) -> None:
    """The zone rules Python reads (the system's zone files, searched before the tzdata
    package) are part of every key that depends on the show's clock
    (famfeeds.records.zones.zone_rules_digest)."""
    rebuilt_after(catalogue, run, zone_rules_update, "feed.xml")
