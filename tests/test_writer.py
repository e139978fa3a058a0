"""Writing output/: all or nothing, and the user's own files are never lost."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from famfeeds import writer
from famfeeds.writer import write_output
from support import Project, build_args


def test_first_write_creates_the_folder(tmp_path: Path) -> None:
    report = write_output({"a.txt": b"A", "sub/b.txt": b"B"}, tmp_path / "out")
    assert (tmp_path / "out/a.txt").read_bytes() == b"A"
    assert (tmp_path / "out/sub/b.txt").read_bytes() == b"B"
    assert report.written == ("a.txt", "sub/b.txt")
    assert oct((tmp_path / "out").stat().st_mode & 0o777) != oct(0o700)


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


def test_a_user_file_in_the_way_is_reported(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "feed.xml").write_text("hand-made")
    report = write_output({"feed.xml": b"built"}, out)
    assert report.replaced == ("feed.xml",)


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_failure_while_writing_leaves_output_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    out = tmp_path / "out"
    write_output({"feed.xml": b"old", "rss.xml": b"old"}, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = Path.write_bytes
    calls = []

    def failing(self: Path, data: bytes) -> int:
        calls.append(self)
        if len(calls) == 2:
            raise error
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing)
    with pytest.raises(type(error)):
        write_output({"feed.xml": b"new", "rss.xml": b"new"}, out)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failure_during_the_swap_restores_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    write_output({"feed.xml": b"old"}, out)
    monkeypatch.setattr(writer, "_exchange", lambda a, b: False)
    real_rename = Path.rename

    def rename(self: Path, target: Path) -> Path:
        if Path(target) == out and self.name.startswith(".out.famfeeds-"):
            raise OSError("simulated failure")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError, match="simulated"):
        write_output({"feed.xml": b"new"}, out)
    monkeypatch.undo()
    assert (out / "feed.xml").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_names_outside_the_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside"):
        write_output({"../escape.txt": b"x"}, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


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
