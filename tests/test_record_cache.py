"""The parse cache: an unchanged season folder is not read again; any change is."""

from __future__ import annotations

import os
import tomllib
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import famfeeds.record_cache as record_cache
from famfeeds.content import load_catalogue
from famfeeds.errors import ContentError
from famfeeds.lockfile import load_lock
from famfeeds.record_cache import CONTENT_CACHE, RecordCache, folder_signature, save_deferred
from support import Project, episode_text


def loaded(project: Project) -> tuple[Any, RecordCache]:
    """Load with the project's cache; the catalogue, and the cache (its hits and misses)."""
    cache_file = project.root / ".famfeeds-cache" / CONTENT_CACHE
    opened: list[RecordCache] = []
    real_open = RecordCache.open

    def spy(path: Path) -> RecordCache:
        opened.append(real_open(path))
        return opened[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RecordCache, "open", spy)
        catalogue = load_catalogue(project.content, cache_file)
    save_deferred()  # as a build does once its output is written
    return catalogue, opened[-1]


@pytest.fixture
def seasons(project: Project) -> Project:
    project.show()
    for number in (1, 2, 3):
        project.season(number, premiere=f"2024-0{number}-05", episodes=3)
    return project


def test_an_unchanged_folder_is_not_read_again(
    seasons: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, cache = loaded(seasons)
    assert (cache.hits, cache.misses) == (0, 3)
    monkeypatch.setattr(record_cache, "RACY_NS", 0)  # trust the signatures at once
    second, cache = loaded(seasons)
    assert second == first
    assert (cache.hits, cache.misses) == (3, 0)


def test_an_edit_reloads_that_season_only(
    seasons: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(record_cache, "RACY_NS", 0)
    loaded(seasons)
    seasons.write("season-02/02-episode-2.md", episode_text(2, "Renamed", "A new synopsis."))
    catalogue, cache = loaded(seasons)
    assert (cache.hits, cache.misses) == (2, 1)
    episode = catalogue.seasons[1].episodes[1]
    assert (episode.title, episode.synopsis) == ("Renamed", "A new synopsis.")


def test_a_same_size_edit_with_the_old_mtime_is_seen(
    seasons: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(record_cache, "RACY_NS", 0)
    path = seasons.content / "season-01/01-episode-1.md"
    info = path.stat()
    loaded(seasons)
    text = path.read_text().replace("Episode 1", "Episode X")  # the same length
    path.write_text(text)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))  # as cp -p or rsync -t would
    catalogue, cache = loaded(seasons)
    assert cache.misses == 1
    assert catalogue.seasons[0].episodes[0].title == "Episode X"


def test_a_young_entry_is_checked_by_its_content(seasons: Project, tmp_path: Path) -> None:
    """Within the racy window a file can change without changing its signature (a coarse
    clock): such an entry is trusted only if the bytes are the ones recorded."""
    folder = seasons.content / "season-01"
    cache = RecordCache.open(tmp_path / "c.pickle")
    signature = folder_signature(folder)
    assert cache.get("k", "s", folder, signature) is None
    cache.put("k", "s", "the value")
    cache.save()
    cache = RecordCache.open(tmp_path / "c.pickle")
    assert cache.get("k", "s", folder, signature) == "the value"  # same bytes: trusted
    path = folder / "01-episode-1.md"
    path.write_text(path.read_text().replace("Episode 1", "Episode X"))
    cache = RecordCache.open(tmp_path / "c.pickle")
    # The same signature as recorded (as a coarse clock would give), other bytes: a miss.
    assert cache.get("k", "s", folder, signature) is None
    # Other loader settings: a miss too.
    cache = RecordCache.open(tmp_path / "c.pickle")
    assert cache.get("k", "other", folder, signature) is None


def test_warnings_come_again_from_the_cache(
    seasons: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    seasons.show(**{'description = "A show for tests."': 'description = "A show."'})
    seasons.write("season-03/03-episode-3.md", episode_text(3, "Quiet", "<script>x</script>"))
    first, cache = loaded(seasons)
    assert first.warnings
    monkeypatch.setattr(record_cache, "RACY_NS", 0)
    second, cache = loaded(seasons)
    assert cache.misses == 0
    assert second.warnings == first.warnings


def test_nothing_is_saved_before_the_build_says_so(seasons: Project) -> None:
    """A load keeps its cache for the build to save once the output is written; a load
    with problems keeps nothing."""
    cache_file = seasons.root / ".famfeeds-cache" / CONTENT_CACHE
    load_catalogue(seasons.content, cache_file)
    assert not cache_file.exists()
    seasons.write("season-02/02-episode-2.md", "no front matter\n")
    with pytest.raises(ContentError):
        load_catalogue(seasons.content, cache_file)
    save_deferred()  # the good load's cache was kept for a build: saved now
    assert cache_file.exists()
    cache_file.unlink()
    with pytest.raises(ContentError):
        load_catalogue(seasons.content, cache_file)
    save_deferred()
    assert not cache_file.exists()


@pytest.mark.parametrize("damage", ["garbage", "other-writable"])
def test_a_damaged_or_foreign_cache_is_ignored(seasons: Project, damage: str) -> None:
    first, _ = loaded(seasons)
    cache_file = seasons.root / ".famfeeds-cache" / CONTENT_CACHE
    if damage == "garbage":
        cache_file.write_bytes(b"\x80\x05not a pickle")
    else:
        cache_file.chmod(0o666)  # someone else could have written it: not unpickled
    second, cache = loaded(seasons)
    assert second == first
    assert cache.hits == 0


def test_the_lock_is_parsed_once_while_unchanged(
    shipped: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock_file = shipped.root / "famfeeds.lock"
    first = load_lock(lock_file)
    assert first.events
    save_deferred()
    monkeypatch.setattr(record_cache, "RACY_NS", 0)

    def refuse(text: str) -> object:
        raise AssertionError("parsed again")

    monkeypatch.setattr(tomllib, "loads", refuse)
    assert load_lock(lock_file).events == first.events
    stamp = lock_file.stat().st_mtime_ns
    assert not load_lock(lock_file).save()  # the events it holds: nothing to write
    assert lock_file.stat().st_mtime_ns == stamp
    # Saving a changed lock records what it wrote: the next load parses nothing either.
    key = sorted(first.events)[0]
    changed = first.with_show("x", {})  # every event kept (none is of show "x")
    changed.events[key] = replace(first.events[key], sequence=99)
    monkeypatch.undo()
    assert changed.save()
    save_deferred()
    monkeypatch.setattr(tomllib, "loads", refuse)
    assert load_lock(lock_file).events[key].sequence == 99
    # A change by anyone else is parsed.
    monkeypatch.undo()
    text = lock_file.read_text().replace("sequence = 99", "sequence = 98")
    lock_file.write_text(text)
    assert load_lock(lock_file).events[key].sequence == 98


def test_builds_agree_with_and_without_the_cache(seasons: Project) -> None:
    """A catalogue from the cache is the catalogue: planned the same, to the day."""
    from famfeeds.planning import plan

    cold = plan(seasons.content)
    warm = plan(seasons.content)
    assert warm.catalogue == cold.catalogue
    assert [i.day for i in warm.published(date(2030, 1, 1))] == [
        i.day for i in cold.published(date(2030, 1, 1))
    ]
