"""The parse cache: an unchanged season folder is not read again; any change is."""

from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import famfeeds.build.record_cache as record_cache
from famfeeds.build.load import load_catalogue
from famfeeds.build.lockfile import load_lock
from famfeeds.build.record_cache import CONTENT_CACHE, RecordCache, folder_signature, save_deferred
from famfeeds.errors import ContentError
from support import Project, episode_text


def loaded(project: Project) -> tuple[Any, RecordCache]:
    """Load with the project's cache; the catalogue, and the cache (its hits and misses)."""
    cache_file = project.root / ".famfeeds-cache" / CONTENT_CACHE
    opened: list[RecordCache] = []
    real_open = RecordCache.open

    def spy(path: Path, shards: int = 1) -> RecordCache:
        opened.append(real_open(path, shards))
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
    cache_dir = seasons.root / ".famfeeds-cache" / CONTENT_CACHE
    load_catalogue(seasons.content, cache_dir)
    assert not cache_dir.exists()
    seasons.write("season-02/02-episode-2.md", "no front matter\n")
    with pytest.raises(ContentError):
        load_catalogue(seasons.content, cache_dir)
    save_deferred()  # the good load's cache was kept for a build: saved now
    assert list(cache_dir.iterdir())
    shutil.rmtree(cache_dir)
    with pytest.raises(ContentError):
        load_catalogue(seasons.content, cache_dir)
    save_deferred()
    assert not cache_dir.exists()


@pytest.mark.parametrize("damage", ["garbage", "other-writable"])
def test_a_damaged_or_foreign_cache_is_ignored(seasons: Project, damage: str) -> None:
    first, _ = loaded(seasons)
    cache_files = sorted((seasons.root / ".famfeeds-cache" / CONTENT_CACHE).iterdir())
    assert cache_files
    for cache_file in cache_files:
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


def test_a_flipped_byte_that_still_unpickles_is_a_miss(
    seasons: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache file whose bytes changed after it was written (a bit flip on disk, a hand
    edit) is not trusted even when it still unpickles: the records come from content/."""
    first, _ = loaded(seasons)
    title = first.seasons[0].episodes[0].title.encode()
    damaged = 0
    for cache_file in (seasons.root / ".famfeeds-cache" / CONTENT_CACHE).iterdir():
        data = cache_file.read_bytes()
        if title in data:
            at = data.index(title)
            cache_file.write_bytes(data[:at] + b"X" + data[at + 1 :])
            damaged += 1
    assert damaged
    monkeypatch.setattr(record_cache, "RACY_NS", 0)  # the signatures alone would be trusted
    second, cache = loaded(seasons)
    assert second.seasons[0].episodes[0].title.encode() == title
    assert second == first
    assert cache.hits < 3


def test_builds_agree_with_and_without_the_cache(seasons: Project) -> None:
    """A catalogue from the cache is the catalogue: planned the same, to the day."""
    from famfeeds.build.load import plan

    cold = plan(seasons.content)
    warm = plan(seasons.content)
    assert warm.catalogue == cold.catalogue
    assert [i.day for i in warm.published(date(2030, 1, 1))] == [
        i.day for i in cold.published(date(2030, 1, 1))
    ]


def cold(project: Project) -> Any:
    """The catalogue read without any cache."""
    return load_catalogue(project.content)


def test_a_build_from_another_working_folder_finds_the_cache(
    seasons: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries are keyed by the folder's absolute path: run from the project, from its
    parent, or given content/ as an absolute path, a rebuild reads nothing again; the
    display paths are the ones of the run that asks."""
    monkeypatch.setattr(record_cache, "RACY_NS", 0)
    monkeypatch.chdir(seasons.root)
    here = Project(Path())
    first, cache = loaded(here)
    assert cache.misses == 3
    assert first.seasons[0].source == "content/season-01/season.toml"
    for where, content in (
        (seasons.root.parent, seasons.root.name + "/content"),
        (seasons.root / "content" / "season-02", str(seasons.content)),
        (seasons.root, "content"),
    ):
        monkeypatch.chdir(where)
        project = Project(Path(content).parent)
        catalogue, cache = loaded(project)
        assert (cache.hits, cache.misses) == (3, 0), where
        assert catalogue == cold(project), where  # display paths of this run, digests too
    monkeypatch.chdir(seasons.root.parent)
    catalogue, _ = loaded(Project(Path(seasons.root.name)))
    episode = catalogue.seasons[2].episodes[1]
    assert episode.source == f"{seasons.root.name}/content/season-03/02-episode-2.md"


def test_warnings_from_another_working_folder_name_its_paths(
    seasons: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    seasons.show(**{'description = "A show for tests."': 'description = "A show."'})
    seasons.write("season-03/03-episode-3.md", episode_text(3, "Quiet", "<script>x</script>"))
    monkeypatch.setattr(record_cache, "RACY_NS", 0)
    monkeypatch.chdir(seasons.root)
    loaded(Project(Path()))
    monkeypatch.chdir(seasons.root.parent)
    project = Project(Path(seasons.root.name))
    catalogue, cache = loaded(project)
    assert cache.misses == 0
    assert [w.file for w in catalogue.warnings] == [
        f"{seasons.root.name}/content/season-03/03-episode-3.md"
    ]
    assert catalogue.warnings == cold(project).warnings


@pytest.mark.parametrize(
    "change",
    ["rename", "add", "remove", "add-note", "edit-note", "retarget-link", "season.toml"],
)
def test_a_changed_file_list_reloads_that_season(
    seasons: Project, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """Renaming, adding or removing a file, a note or a link's target is noticed in the
    season it is in, and only there; the result is what a cold load gives."""
    monkeypatch.setattr(record_cache, "RACY_NS", 0)
    folder = seasons.content / "season-02"
    if change in ("edit-note", "retarget-link"):
        seasons.write("season-02/newsletter/2024-02-05.md", "A note.\n")
        seasons.write("spare/a.md", episode_text(3, "Episode 3", "Spare text A."))
        seasons.write("spare/b.md", episode_text(3, "Episode 3", "Spare text B."))
        (folder / "03-episode-3.md").unlink()
        (folder / "03-episode-3.md").symlink_to("../spare/a.md")
    loaded(seasons)
    if change == "rename":
        (folder / "02-episode-2.md").rename(folder / "02-the-renamed-one.md")
    elif change == "add":
        seasons.write("season-02/04-episode-4.md", episode_text(4, "Episode 4"))
    elif change == "remove":
        (folder / "03-episode-3.md").unlink()
    elif change == "add-note":
        seasons.write("season-02/newsletter/2024-02-05.md", "A note.\n")
    elif change == "edit-note":
        seasons.write("season-02/newsletter/2024-02-05.md", "Another note.\n")
    elif change == "retarget-link":
        (folder / "03-episode-3.md").unlink()
        (folder / "03-episode-3.md").symlink_to("../spare/b.md")
    else:
        seasons.write("season-02/season.toml", (folder / "season.toml").read_text() + "\n")
    catalogue, cache = loaded(seasons)
    assert (cache.hits, cache.misses) == (2, 1)
    assert catalogue == cold(seasons)
    if change == "retarget-link":
        assert catalogue.seasons[1].episodes[2].synopsis == "Spare text B."


def test_a_season_with_a_problem_is_not_cached_and_is_reported_again(
    seasons: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(record_cache, "RACY_NS", 0)
    loaded(seasons)
    seasons.write("season-02/02-episode-2.md", "no front matter\n")
    for _ in range(2):
        with pytest.raises(ContentError, match=r"season-02/02-episode-2\.md"):
            load_catalogue(seasons.content, seasons.root / ".famfeeds-cache" / CONTENT_CACHE)
        save_deferred()


def test_a_corrupt_entry_is_a_miss_and_is_recorded_again(
    seasons: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(record_cache, "RACY_NS", 0)
    first, cache = loaded(seasons)
    key = next(iter(cache.entries))
    cache.entries[key] = (*cache.entries[key][:4], b"\x80\x05not a pickle")
    cache.used, cache.changed = dict(cache.entries), True
    cache.save()
    second, cache = loaded(seasons)
    assert (cache.hits, cache.misses) == (2, 1)
    assert second == first
    _, cache = loaded(seasons)
    assert (cache.hits, cache.misses) == (3, 0)


def test_each_season_has_a_digest_of_its_records(
    seasons: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Catalogue.digests: season_digest of every season, the same from the cache as from a
    cold load and from any working folder; it changes with the records, not with where
    they are read from."""
    from famfeeds.records.models import season_digest

    monkeypatch.setattr(record_cache, "RACY_NS", 0)
    first, _ = loaded(seasons)
    warm, cache = loaded(seasons)
    assert cache.misses == 0
    expected = {s.number: season_digest(s) for s in cold(seasons).seasons}
    assert dict(first.digests) == dict(warm.digests) == expected
    assert len(set(expected.values())) == 3
    assert all(warm.digest(s) == expected[s.number] for s in warm.seasons)
    monkeypatch.chdir(seasons.root)
    elsewhere = load_catalogue(Path("content"))
    assert elsewhere.seasons[0].source == "content/season-01/season.toml"
    assert elsewhere.seasons[0].source != warm.seasons[0].source
    assert dict(elsewhere.digests) == expected
    seasons.write("season-02/02-episode-2.md", episode_text(2, "Episode 2", "Changed."))
    changed, _ = loaded(seasons)
    assert changed.digests[2] != expected[2]
    assert (changed.digests[1], changed.digests[3]) == (expected[1], expected[3])


def test_the_kept_digest_is_the_records_digest(seasons: Project) -> None:
    """Catalogue.digests, kept with the parse cache, equal season_digest of the records
    as they are: the build registers them as the seasons' fingerprints
    (famfeeds.build.pipeline.fingerprints) instead of serialising every season."""
    from famfeeds.records.models import season_digest

    assert load_catalogue(seasons.content).digests  # a cold load takes them
    catalogue = load_catalogue(seasons.content)  # from the parse cache
    for season in catalogue.seasons:
        assert catalogue.digest(season) == season_digest(season)


def test_a_plan_from_the_cache_is_the_cold_plan(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Releases sharing a day, timed and all-day releases, a cancelled episode, previews,
    notes (one stray): the cached plan equals the cold one, in every order."""
    import famfeeds.build.load as planning

    project.show()
    project.season(
        1,
        premiere="2024-03-01",
        cadence="daily",
        extra="release_time = 21:00:00",
        episodes={
            1: {},
            2: {"release": "2024-03-01T22:00:00"},
            3: {"status": '"cancelled"'},
            4: {"release": "2024-03-10"},
            5: {},
        },
    )
    project.season(2, premiere="2024-03-08", cadence="weekly", episodes=3)
    project.write("season-02/newsletter/2024-03-01.md", "See you next week.\n")
    project.write("season-02/newsletter/2024-03-02.md", "A stray note.\n")
    monkeypatch.setattr(record_cache, "RACY_NS", 0)
    planning.plan(project.content)
    save_deferred()
    warm = planning.plan(project.content)
    monkeypatch.setattr(planning, "load_catalogue", lambda root, cache=None: cold(project))
    reference = planning.plan(project.content)
    assert warm == reference
    assert [i.day for i in warm.issues] == sorted(i.day for i in warm.issues)
    assert any(len(i.releases) == 2 for i in warm.issues)
    assert any(i.previews for i in warm.issues)
    stray = [w for w in warm.warnings if w.message.endswith("so the note is not used")]
    assert [w.file.rsplit("/", 1)[-1] for w in stray] == ["2024-03-02.md"]


def test_planning_leaves_the_garbage_collector_as_it_was(seasons: Project) -> None:
    import gc

    from famfeeds.build.load import plan

    assert gc.isenabled()
    planned = plan(seasons.content)
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
    # What planning made counts as old: the next collections of the young do not walk it.
    assert any(found is planned for found in gc.get_objects(generation=2))
    gc.disable()
    try:
        plan(seasons.content)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_one_shot_plan_can_leave_its_objects_to_reference_counting(seasons: Project) -> None:
    """plan(freeze=True) moves what is alive out of the collector's reach (gc.freeze), the
    plan included; a failed plan freezes nothing."""
    import gc

    from famfeeds.build.load import plan

    assert gc.get_freeze_count() == 0
    try:
        planned = plan(seasons.content, freeze=True)
        assert gc.get_freeze_count() > 0
        assert gc.isenabled()
        assert all(found is not planned for found in gc.get_objects())  # not walked again
    finally:
        gc.unfreeze()
    seasons.write("season-02/02-episode-2.md", "no front matter\n")
    with pytest.raises(ContentError):
        plan(seasons.content, freeze=True)
    assert gc.get_freeze_count() == 0


def test_an_edit_rewrites_only_the_file_that_holds_its_season(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The season cache is spread over CONTENT_SHARDS private files by key: a change
    rewrites the one that holds the changed season, and a season gone from the content is
    dropped from its file."""
    from famfeeds.build.record_cache import CONTENT_SHARDS

    project.show()
    for number in range(1, 41):
        project.season(number, premiere=f"{2000 + number}-01-05", episodes=1)
    monkeypatch.setattr(record_cache, "RACY_NS", 0)
    former = project.root / ".famfeeds-cache" / "records.pickle"  # an earlier version's
    former.parent.mkdir(mode=0o700)
    former.write_bytes(b"14 MB on a large catalogue")
    loaded(project)
    assert not former.exists()
    folder = project.root / ".famfeeds-cache" / CONTENT_CACHE
    assert folder.stat().st_mode & 0o777 == 0o700
    assert folder.parent.stat().st_mode & 0o777 == 0o700
    files = sorted(folder.iterdir())
    assert 1 < len(files) <= CONTENT_SHARDS
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)

    def stamps() -> dict[str, int]:
        return {f.name: f.stat().st_ino for f in folder.iterdir()}

    before = stamps()
    project.write("season-07/01-episode-1.md", episode_text(1, "Changed"))
    catalogue, cache = loaded(project)
    assert (cache.hits, cache.misses) == (39, 1)
    after = stamps()
    assert after.keys() == before.keys()
    rewritten = [name for name in before if after[name] != before[name]]
    assert len(rewritten) == 1
    assert catalogue.seasons[6].episodes[0].title == "Changed"
    shutil.rmtree(project.content / "season-40")
    loaded(project)
    _, cache = loaded(project)
    assert (cache.hits, cache.misses) == (39, 0)
    assert len(cache.entries) == 39


def test_a_build_saves_the_parse_cache_its_next_build_reads(
    shipped: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``famfeeds build`` twice, as a user runs it: the second reads no episode file again
    (a build that checks the content first, then drops the saves, reparses everything)."""
    from click.testing import CliRunner

    from famfeeds.cli import cli
    from famfeeds.records.loader import Loader

    args = ["build", "--content", str(shipped.content), "--output", str(shipped.output)]
    args += ["--as-of", "2023-12-01"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    # The files' stat is trusted once their change time is old enough; age them.
    old = shipped.content.stat().st_mtime - 3600
    for path in shipped.content.rglob("*"):
        os.utime(path, (old, old))
    assert CliRunner().invoke(cli, args).exit_code == 0  # records the now-trusted stat
    parsed: list[Path] = []
    original = Loader.load_episode

    def counting(self: Loader, path: Path, *rest: Any) -> Any:
        parsed.append(path)
        return original(self, path, *rest)

    monkeypatch.setattr(Loader, "load_episode", counting)
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert parsed == []


def test_a_private_pickle_is_streamed_sealed_and_read_back(tmp_path: Path) -> None:
    """A 20 MB cache is written without a whole copy of its pickle in memory (the soap's
    first build peaked 48 MB higher while its caches were saved), and reads back; a
    flipped byte makes it a miss."""
    import tracemalloc

    data = {i: bytes([i % 256]) * 1000 for i in range(20_000)}
    path = tmp_path / "cache" / "big.pickle"
    tracemalloc.start()
    try:
        assert record_cache.save_private_pickle(path, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert path.stat().st_size > 20_000_000
    assert peak < 5_000_000, peak
    assert record_cache.load_private_pickle(path) == data
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 1
    path.write_bytes(bytes(raw))
    assert record_cache.load_private_pickle(path) is None
