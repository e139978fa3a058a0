"""The index of a large output trusts a folder by its stamp (inode, mtime, ctime) instead of
listing it, and still notices what a user did in output/ (see famfeeds.build.inplace).

Each test first *settles* the output: it waits until the filesystem's clock has moved past
every folder's last change and rebuilds, so that the index trusts every folder; what
follows then exercises the stamps, not a listing the index asked for."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from click.testing import Result

import famfeeds.build.inplace
from famfeeds.build.evaluate import digest_of, file_digest, file_digests
from famfeeds.build.inplace import IN_DOUBT, Index, index_path, journal_path, load_index
from famfeeds.render.files import FileSet
from support import Project, build_args, episode_text

AS_OF = "2024-06-01"


@pytest.fixture
def large(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A small project treated as a large one (the threshold lowered)."""
    monkeypatch.setattr(famfeeds.build.inplace, "PER_FILE_FROM", 1)
    project.show()
    project.season(1, premiere="2024-01-05", episodes=4)
    project.season(2, premiere="2024-03-01", cadence="daily", episodes=3)
    return project


@pytest.fixture
def listed(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every call to famfeeds.build.inplace.list_folders: the folders it was asked to list."""
    calls: list[list[str]] = []
    real = famfeeds.build.inplace.list_folders

    def spy(target: Path, pending: list[str], *rest: object) -> None:
        calls.append(list(pending))
        real(target, pending, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(famfeeds.build.inplace, "list_folders", spy)
    return calls


def build(project: Project, run: Callable[..., Result], *extra: str) -> Result:
    result = run(*build_args(project, "--as-of", AS_OF, *extra))
    assert result.exit_code == 0, result.output
    return result


def index_of(project: Project) -> Index:
    target = project.output.resolve()
    index = load_index(index_path(project.root / ".famfeeds-cache", target), target)
    assert index is not None
    return index


def settle(project: Project, run: Callable[..., Result]) -> None:
    """Wait for the filesystem's clock to pass the output's last change, then rebuild: the
    index then trusts every folder."""
    latest = max(os.lstat(p).st_ctime_ns for p in [project.output, *project.output.rglob("*")])
    for _ in range(5000):
        now = famfeeds.build.inplace.filesystem_clock(project.output)
        assert now is not None
        if now > latest:
            break
        time.sleep(0.001)
    build(project, run)
    assert IN_DOUBT not in index_of(project).stamps


def stats(folder: Path) -> dict[str, tuple[int, int]]:
    """Inode and mtime_ns of every file and folder."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in [folder, *folder.rglob("*")]
    }


def reference(project: Project, run: Callable[..., Result]) -> dict[str, bytes]:
    """The same content built from scratch into another folder."""
    other = Project(project.root)
    other.output = project.root / "reference"
    shutil.rmtree(other.output, ignore_errors=True)
    result = run("build", "--content", project.content, "--output", other.output, "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    return other.snapshot()


def test_an_unchanged_rebuild_lists_no_folder_and_writes_nothing(
    large: Project, run: Callable[..., Result], listed: list[list[str]]
) -> None:
    build(large, run)
    settle(large, run)
    index = index_path(large.root / ".famfeeds-cache", large.output.resolve())
    before, saved = stats(large.output), (index.stat().st_ino, index.stat().st_mtime_ns)
    listed.clear()
    build(large, run)
    assert listed == []  # one stamp a folder, no listing
    assert stats(large.output) == before  # no file, folder or manifest rewritten
    assert (index.stat().st_ino, index.stat().st_mtime_ns) == saved  # nor the index
    assert not journal_path(index).exists()


def test_a_file_deleted_by_hand_in_a_folder_is_rebuilt(
    large: Project, run: Callable[..., Result], listed: list[list[str]]
) -> None:
    build(large, run)
    settle(large, run)
    expected = large.snapshot()
    (large.output / "s01/e02/index.html").unlink()
    listed.clear()
    build(large, run)
    assert large.snapshot() == expected
    assert listed == [["s01/e02"]]  # the one folder whose stamp changed


def test_a_file_replaced_by_a_rename_is_rebuilt(large: Project, run: Callable[..., Result]) -> None:
    build(large, run)
    settle(large, run)
    expected = large.snapshot()
    stray = large.output / "s02/e01/saved.tmp"
    stray.write_bytes(b"an editor's bytes")
    stray.replace(large.output / "s02/e01/index.html")  # saved over it the way editors do
    build(large, run)
    assert large.snapshot() == expected


def test_a_folder_deleted_by_hand_is_rebuilt_in_place(
    large: Project, run: Callable[..., Result]
) -> None:
    build(large, run)
    settle(large, run)
    expected, folder = large.snapshot(), large.output.stat().st_ino
    shutil.rmtree(large.output / "s01")
    build(large, run)
    assert large.snapshot() == expected
    assert large.output.stat().st_ino == folder  # repaired in place, not swapped


def test_the_users_files_and_folders_are_kept_through_rebuilds(
    large: Project, run: Callable[..., Result]
) -> None:
    build(large, run)
    settle(large, run)
    (large.output / "s01/notes.txt").write_text("mine\n")
    (large.output / "img").mkdir()
    (large.output / "img/logo.png").write_bytes(b"PNG")
    result = build(large, run)
    assert "Kept 2 files famfeeds did not make: img/logo.png, s01/notes.txt" in result.output
    settle(large, run)
    large.write("season-01/01-episode-1.md", episode_text(1, "Changed title"))
    result = build(large, run)
    assert "Kept 2 files" in result.output
    (large.content / "season-01/04-episode-4.md").unlink()  # its folder goes, not the user's
    build(large, run)
    got = large.snapshot()
    assert got.pop("s01/notes.txt") == b"mine\n" and got.pop("img/logo.png") == b"PNG"
    assert got == reference(large, run)


def test_a_folder_replaced_by_a_link_is_left_to_the_writer(
    large: Project, run: Callable[..., Result]
) -> None:
    build(large, run)
    settle(large, run)
    elsewhere = large.root / "elsewhere"
    (large.output / "s02").rename(elsewhere)
    (large.output / "s02").symlink_to(elsewhere)
    inside = {p.name: p.stat().st_ino for p in elsewhere.rglob("*")}
    result = run(*build_args(large, "--as-of", AS_OF))
    assert result.exit_code == 1  # the writer's refusal: a link famfeeds did not make
    assert "did not make" in result.output and "s02" in result.output
    assert {p.name: p.stat().st_ino for p in elsewhere.rglob("*")} == inside


def test_a_touched_manifest_means_a_whole_tree_build(
    large: Project, run: Callable[..., Result]
) -> None:
    build(large, run)
    settle(large, run)
    folder = large.output.stat().st_ino
    manifest = large.output / ".famfeeds-manifest"
    os.utime(manifest, ns=(0, 0))
    build(large, run)
    assert large.output.stat().st_ino != folder
    assert large.snapshot() == reference(large, run)


class Killed(BaseException):
    """Stands for SIGKILL in the middle of the files' replacement."""


def test_a_rebuild_stopped_midway_is_finished_in_place_by_the_next(
    large: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    build(large, run)
    settle(large, run)
    folder = large.output.stat().st_ino
    large.write("season-02/04-episode-4.md", episode_text(4, "A new day"))  # new files
    large.write("season-01/02-episode-2.md", episode_text(2, "Episode 2", "Rewritten."))
    real = famfeeds.build.inplace._apply

    def half(
        files: Mapping[str, bytes], target: Path, plan: famfeeds.build.inplace.Plan, *rest: object
    ) -> set[str]:
        plan.write = plan.write[: len(plan.write) // 2]
        real(files, target, plan, *rest)  # type: ignore[arg-type]
        raise Killed

    monkeypatch.setattr(famfeeds.build.inplace, "_apply", half)
    with pytest.raises(Killed):
        run(*build_args(large, "--as-of", AS_OF))
    index = index_path(large.root / ".famfeeds-cache", large.output.resolve())
    assert journal_path(index).exists()
    manifest = (large.output / ".famfeeds-manifest").read_text().splitlines()
    assert "s02/e04/index.html" in manifest  # new names are ours before any appears
    monkeypatch.setattr(famfeeds.build.inplace, "_apply", real)
    build(large, run)
    assert large.output.stat().st_ino == folder  # finished in place
    assert large.snapshot() == reference(large, run)
    assert not journal_path(index).exists()


class Known(Mapping[str, bytes]):
    """Files whose digests are known: as a ``digests`` mapping, or by ``digest(name)``."""

    def __init__(self, files: dict[str, bytes], bulk: bool) -> None:
        self.files = files
        known = {n: digest_of(b) for n, b in files.items()}
        if bulk:
            self.digests = known
        else:
            self.digest = known.__getitem__
        self.read: list[str] = []

    def __getitem__(self, name: str) -> bytes:
        self.read.append(name)
        return self.files[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)


def test_fileset_digests_come_from_the_parts_without_reading_them() -> None:
    bulk = Known({"a.html": b"A", "b.html": b"B"}, bulk=True)
    each = Known({"c.ics": b"C", "a.html": b"A2"}, bulk=False)
    plain = {"d.xml": b"D"}
    files = FileSet(bulk, FileSet(each, plain))
    got = file_digests(files)
    assert list(got) == list(files) == ["a.html", "b.html", "c.ics", "d.xml"]
    assert got == {n: digest_of(files[n]) for n in files}  # a.html from the later part
    assert got["a.html"] == digest_of(b"A2") == file_digest(files, "a.html")
    bulk.read.clear()
    each.read.clear()
    file_digests(files)
    assert bulk.read == each.read == []


def test_folders_stamped_within_the_clocks_tick_are_listed_by_the_next_build(
    large: Project,
    run: Callable[..., Result],
    listed: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A folder changed in the same tick as the build could change again and keep its
    stamp: the index does not trust it."""
    build(large, run)
    settle(large, run)
    clock = famfeeds.build.inplace.filesystem_clock
    monkeypatch.setattr(famfeeds.build.inplace, "filesystem_clock", lambda target: 1)  # 1970
    large.write("season-01/02-episode-2.md", episode_text(2, "Episode 2", "Rewritten."))
    build(large, run)
    assert set(index_of(large).stamps) == {IN_DOUBT}
    monkeypatch.setattr(famfeeds.build.inplace, "filesystem_clock", clock)
    listed.clear()
    build(large, run)
    every = {p.relative_to(large.output).as_posix() for p in large.output.rglob("*") if p.is_dir()}
    assert {f for call in listed for f in call} == every | {""}


def test_the_folders_a_rebuild_changed_are_listed_by_the_next_one(
    large: Project,
    run: Callable[..., Result],
    listed: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Even with the clock long past: the build wrote into them after it looked at them."""
    build(large, run)
    settle(large, run)
    monkeypatch.setattr(famfeeds.build.inplace, "filesystem_clock", lambda target: 2**62)
    before = stats(large.output)
    large.write("season-01/02-episode-2.md", episode_text(2, "Episode 2", "Rewritten."))
    build(large, run)
    after = stats(large.output)
    written = {n for n, (inode, _) in after.items() if inode != before.get(n, (0, 0))[0]}
    touched = {n.rpartition("/")[0] for n in written}
    assert {"s01/e02", ""} <= touched
    index = index_of(large)
    doubt = {f for f, s in zip(index.folder_list(), index.stamps, strict=True) if s == IN_DOUBT}
    assert doubt == touched
    listed.clear()
    build(large, run)
    assert sorted(f for call in listed for f in call) == sorted(touched)
