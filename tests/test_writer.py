"""Writing output/: all or nothing, the user's own files never lost, dangerous folders refused.

The process-level faults (mount points, devices, kills, overlapping builds) are in
tests/faults/test_build_faults.py."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from famfeeds.build import writer
from famfeeds.build.writer import Guarded, resolve_output, write_output
from famfeeds.errors import FamfeedsError
from support import Project, build_args


def tree(root: Path) -> dict[str, tuple[str, int, bytes | str]]:
    """Everything under ``root`` (itself included, as "."): kind, mode, bytes or link."""
    found: dict[str, tuple[str, int, bytes | str]] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        info = path.lstat()
        name = path.relative_to(root).as_posix()
        if stat.S_ISLNK(info.st_mode):
            found[name] = ("link", 0, str(path.readlink()))
        elif stat.S_ISDIR(info.st_mode):
            found[name] = ("dir", stat.S_IMODE(info.st_mode), b"")
        elif stat.S_ISREG(info.st_mode):
            found[name] = ("file", stat.S_IMODE(info.st_mode), path.read_bytes())
        else:
            found[name] = ("special", stat.S_IMODE(info.st_mode), b"")
    return found


def test_first_write_creates_the_folder(tmp_path: Path) -> None:
    report = write_output({"a.txt": b"A", "sub/b.txt": b"B"}, tmp_path / "out")
    assert (tmp_path / "out/a.txt").read_bytes() == b"A"
    assert (tmp_path / "out/sub/b.txt").read_bytes() == b"B"
    assert report.written == ("a.txt", "sub/b.txt")
    assert oct((tmp_path / "out").stat().st_mode & 0o777) != oct(0o700)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no lock file, no staging


def test_files_the_build_did_not_make_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output({"feed.xml": b"1", "old-season.ics": b"x"}, out)
    (out / "CNAME").write_text("shows.example.org")
    (out / "img").mkdir()
    (out / "img/logo.png").write_bytes(b"\x89PNG")
    report = write_output({"feed.xml": b"2"}, out)
    assert (out / "feed.xml").read_bytes() == b"2"
    assert (out / "CNAME").read_text() == "shows.example.org"
    assert (out / "img/logo.png").read_bytes() == b"\x89PNG"
    assert not (out / "old-season.ics").exists()  # made by the previous build, no longer built
    assert sorted(report.kept) == ["CNAME", "img/logo.png"]


def test_a_user_file_in_the_way_is_refused_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("my own page")
    (out / "newsletter").write_text("a file where the build wants a folder")
    before = tree(tmp_path)
    files = {"index.html": b"built", "newsletter/a.html": b"A", "feed.xml": b"F"}
    with pytest.raises(FamfeedsError) as caught:
        write_output(files, out)
    message = caught.value.format_message()
    assert "index.html, newsletter." in message and "--overwrite" in message
    assert tree(tmp_path) == before
    report = write_output(files, out, overwrite=True)
    assert report.replaced == ("index.html", "newsletter")
    assert (out / "index.html").read_bytes() == b"built"
    assert write_output(files, out).replaced == ()  # now famfeeds' own


def test_a_folder_where_a_file_goes_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "feed.xml").mkdir(parents=True)
    (out / "feed.xml/keep.txt").write_text("mine")
    before = tree(tmp_path)
    with pytest.raises(FamfeedsError, match=r"where these folders are: feed\.xml"):
        write_output({"feed.xml": b"x"}, out, overwrite=True)
    assert tree(tmp_path) == before


def test_empty_folders_and_folder_modes_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output({"feed.xml": b"1", "newsletter/a.html": b"A", "old/x.ics": b"x"}, out)
    (out / "drafts/empty").mkdir(parents=True)
    (out / "img").mkdir(mode=0o700)
    (out / "img/logo.png").write_bytes(b"png")
    (out / "img").chmod(0o750)
    (out / "newsletter").chmod(0o711)
    out.chmod(0o705)
    write_output({"feed.xml": b"2", "newsletter/a.html": b"A2"}, out)
    assert (out / "drafts/empty").is_dir()
    assert stat.S_IMODE((out / "img").stat().st_mode) == 0o750
    assert stat.S_IMODE((out / "newsletter").stat().st_mode) == 0o711
    assert stat.S_IMODE(out.stat().st_mode) == 0o705
    assert not (out / "old").exists()  # a folder only famfeeds filled, now empty: removed


def test_symlinks_are_carried_as_links_never_followed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output({"feed.xml": b"1"}, out)
    (out / "zero").symlink_to("/dev/zero")
    (out / "site").symlink_to(tmp_path / "elsewhere")
    report = write_output({"feed.xml": b"2"}, out)
    assert sorted(report.kept) == ["site", "zero"]
    assert (out / "zero").readlink() == Path("/dev/zero")
    assert (out / "site").readlink() == tmp_path / "elsewhere"


def test_a_fifo_in_the_output_stops_the_build_before_anything_changes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output({"feed.xml": b"1"}, out)
    os.mkfifo(out / "pipe")
    before = tree(tmp_path)
    with pytest.raises(FamfeedsError, match=r"not regular files.*: pipe\. "):
        write_output({"feed.xml": b"2"}, out)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("where", [".", "sub"])
def test_a_read_only_output_is_refused_before_anything_changes(tmp_path: Path, where: str) -> None:
    out = tmp_path / "out"
    write_output({"feed.xml": b"1", "sub/a.ics": b"a"}, out)
    (out / where).chmod(0o555)
    before = tree(tmp_path)
    try:
        expected = "out is read-only" if where == "." else "read-only folders: .*out/sub"
        with pytest.raises(FamfeedsError, match=expected):
            write_output({"feed.xml": b"2", "sub/a.ics": b"b"}, out)
        assert tree(tmp_path) == before
    finally:
        (out / where).chmod(0o755)


def test_a_symlinked_output_is_followed_and_stays_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "www/site"
    write_output({"feed.xml": b"1"}, real)
    (real / "CNAME").write_text("x")
    link = tmp_path / "out"
    link.symlink_to(real)
    write_output({"feed.xml": b"2"}, link)
    assert link.is_symlink() and link.readlink() == real
    assert (real / "feed.xml").read_bytes() == b"2"
    assert (real / "CNAME").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "www"]
    assert sorted(p.name for p in (tmp_path / "www").iterdir()) == ["site"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failure_while_writing_leaves_output_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    out = tmp_path / "out"
    write_output({"feed.xml": b"old", "rss.xml": b"old"}, out)
    before = tree(tmp_path)
    real = Path.write_bytes
    calls = []

    def failing(self: Path, data: bytes) -> int:
        calls.append(self)
        if len(calls) == 2:
            raise error
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing)
    expected = FamfeedsError if isinstance(error, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as caught:
        write_output({"feed.xml": b"new", "rss.xml": b"new"}, out)
    monkeypatch.undo()
    if expected is FamfeedsError:
        assert "No space left on device" in caught.value.format_message()
    assert tree(tmp_path) == before


def test_failure_during_the_swap_restores_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    write_output({"feed.xml": b"old"}, out)
    monkeypatch.setattr(writer, "_exchange", lambda a, b: False)
    real_rename = Path.rename

    def rename(self: Path, target: Path) -> Path:
        if Path(target) == out and self.name.startswith(".out.famfeeds-new-"):
            raise OSError("simulated failure")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(FamfeedsError, match="simulated"):
        write_output({"feed.xml": b"new"}, out)
    monkeypatch.undo()
    assert (out / "feed.xml").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_two_step_swap_works_where_exchange_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    write_output({"feed.xml": b"old"}, out)
    monkeypatch.setattr(writer, "_exchange", lambda a, b: False)
    write_output({"feed.xml": b"new"}, out)
    assert (out / "feed.xml").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_before_swap_runs_once_the_build_is_staged_and_its_failure_publishes_nothing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    write_output({"feed.xml": b"old"}, out)
    seen = []

    def before() -> None:
        staged = [p for p in tmp_path.iterdir() if p.name.startswith(".out.famfeeds-new-")]
        seen.append(((out / "feed.xml").read_bytes(), (staged[0] / "feed.xml").read_bytes()))
        raise FamfeedsError("cannot save famfeeds.lock")

    with pytest.raises(FamfeedsError, match=r"famfeeds\.lock"):
        write_output({"feed.xml": b"new"}, out, before_swap=before)
    assert seen == [(b"old", b"new")]
    assert (out / "feed.xml").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_leftovers_of_killed_builds_are_removed_and_a_moved_output_put_back(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    write_output({"feed.xml": b"1"}, out)
    staged = tmp_path / ".out.famfeeds-new-abc123"
    (staged / "newsletter").mkdir(parents=True)
    (staged / "newsletter/x.html").write_text("half")
    (tmp_path / ".other.famfeeds-new-zzz").mkdir()  # another output's: not ours to remove
    write_output({"feed.xml": b"2"}, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.famfeeds-new-zzz", "out"]
    # killed between the two renames of the two-step swap: output missing, old one aside
    out.rename(tmp_path / ".out.famfeeds-old-def456")
    report = write_output({"feed.xml": b"3"}, out)
    assert (out / "feed.xml").read_bytes() == b"3" and report.replaced == ()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.famfeeds-new-zzz", "out"]


def test_dangerous_folders_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home/someone"
    project = home / "shows/project"
    (project / "content").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(project)
    guarded = [
        Guarded(project, "the project folder", inside_ok=True),
        Guarded(project / "content", "the content folder"),
    ]
    cases = {
        Path("/"): "the root of the filesystem",
        home: "it is your home folder",
        tmp_path / "home": "it holds your home folder",
        Path("~"): "it is your home folder",
        project: "it is the project folder",
        Path(): "it is the project folder",
        Path(".."): "it holds the project folder",
        project / "content": "it is the content folder",
        project / "content/out": "it is inside the content folder",
    }
    for output, reason in cases.items():
        with pytest.raises(FamfeedsError, match=reason):
            resolve_output(output, guarded)
    assert resolve_output(Path("output"), guarded) == project / "output"
    monkeypatch.chdir(project / "content")
    with pytest.raises(FamfeedsError, match="it is the folder you are in"):
        resolve_output(Path(), [])
    (home / "file").write_text("x")
    with pytest.raises(FamfeedsError, match="exists and is not a folder"):
        resolve_output(home / "file", [])


def test_names_outside_the_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside"):
        write_output({"../escape.txt": b"x"}, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def test_a_second_writer_waits_says_so_and_gives_up_after_its_wait(tmp_path: Path) -> None:
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        told: list[str] = []
        with pytest.raises(FamfeedsError, match=r"another famfeeds build is writing in"):
            write_output({"a": b"1"}, out, wait=1.5, waiting=told.append)
        assert len(told) == 1 and told[0].startswith("Waiting for another famfeeds build")
        assert not out.exists()
    finally:
        holder.communicate("")
    write_output({"a": b"1"}, out, wait=0)  # the kernel released the lock with the process
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # and so did this one
    finally:
        os.close(fd)


def test_a_render_failure_writes_nothing(
    shipped: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(*build_args(shipped, "--as-of", "2023-11-24")).exit_code == 0
    before = shipped.snapshot()
    broken = shipped.root / "templates"
    broken.mkdir()
    (broken / "index.html.j2").write_text("{% for x in %}")
    result = run(*build_args(shipped, "--as-of", "2024-01-31", "--templates", broken))
    assert result.exit_code == 1
    assert "index.html.j2:1: template syntax error" in result.output
    assert shipped.snapshot() == before


def test_unchanged_files_are_carried_by_link_and_changed_ones_rewritten(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output({"same.ics": b"unchanged", "feed.xml": b"old"}, out)
    inode = (out / "same.ics").stat().st_ino
    write_output({"same.ics": b"unchanged", "feed.xml": b"new!"}, out)
    assert (out / "same.ics").read_bytes() == b"unchanged"
    assert (out / "same.ics").stat().st_ino == inode
    assert (out / "feed.xml").read_bytes() == b"new!"
