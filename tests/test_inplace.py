"""Large outputs are rebuilt in place: only changed files are replaced, and the result is the
whole-tree build's, byte for byte (see famfeeds.build.inplace)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

import famfeeds.build.inplace
import famfeeds.build.pipeline
from famfeeds.errors import FamfeedsError
from support import Project, build_args, episode_text

AS_OF = "2024-06-01"
NEWSLETTER = """
[newsletter]
sender_name = "Test weekly"
sender_address = "news@example.net"
unsubscribe_url = "https://example.net/unsubscribe?token={token}"
"""


@pytest.fixture
def large(project: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A small project treated as a large one (the threshold lowered)."""
    monkeypatch.setattr(famfeeds.build.inplace, "PER_FILE_FROM", 1)
    project.show()
    project.season(1, premiere="2024-01-05", episodes=4)
    project.season(2, premiere="2024-03-01", cadence="daily", episodes=3)
    return project


def inodes(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_ino for p in folder.rglob("*") if p.is_file()
    }


def reference(project: Project, run: Callable[..., Result], name: str = "reference") -> dict:
    """The same content built from scratch into another folder."""
    other = Project(project.root)
    other.output = project.root / name
    result = run("build", "--content", project.content, "--output", other.output, "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    return other.snapshot()


def build(project: Project, run: Callable[..., Result], *extra: str) -> Result:
    result = run(*build_args(project, "--as-of", AS_OF, *extra))
    assert result.exit_code == 0, result.output
    return result


def test_a_rebuild_replaces_only_the_changed_files(
    large: Project, run: Callable[..., Result]
) -> None:
    build(large, run)
    folder_inode = large.output.stat().st_ino
    before, old = inodes(large.output), large.snapshot()
    build(large, run)  # nothing changed: nothing touched
    assert inodes(large.output) == before
    large.write("season-01/02-episode-2.md", episode_text(2, "Episode 2", "A new synopsis."))
    build(large, run)
    after, new = inodes(large.output), large.snapshot()
    assert large.output.stat().st_ino == folder_inode  # not swapped: updated in place
    changed = {n for n in new if n != ".famfeeds-manifest" and new[n] != old.get(n)}
    assert {"s01/e02/index.html", "episodes/s01e02.ics", "calendar.ics"} <= changed
    assert {n for n in after if after[n] != before.get(n)} == changed
    assert new == reference(large, run)


def test_a_deleted_or_replaced_output_file_is_rebuilt(
    large: Project, run: Callable[..., Result]
) -> None:
    build(large, run)
    expected = large.snapshot()
    victims = sorted(n for n in expected if n.endswith(".ics"))[:2]
    (large.output / victims[0]).unlink()
    stray = large.output / "stray.tmp"
    stray.write_bytes(b"someone else's bytes")
    stray.replace(large.output / victims[1])  # saved over it the way editors do
    build(large, run)
    assert large.snapshot() == expected


def test_the_users_files_are_kept_and_never_overwritten_unasked(
    large: Project, run: Callable[..., Result]
) -> None:
    build(large, run)
    (large.output / "CNAME").write_text("shows.example.net\n")
    large.write("season-01/05-episode-5.md", episode_text(5, "Episode 5"))
    built = large.snapshot()
    # The user's file stands where the new episode's calendar file would go.
    taken = sorted(set(reference(large, run)) - set(built))
    taken = [n for n in taken if n.endswith(".ics")]
    (large.output / taken[0]).write_text("mine\n")
    before = large.snapshot()
    result = run(*build_args(large, "--as-of", AS_OF))
    assert result.exit_code == 1
    assert "did not make" in result.output and taken[0] in result.output
    assert large.snapshot() == before
    result = build(large, run, "--overwrite")
    assert (large.output / "CNAME").read_text() == "shows.example.net\n"
    assert (large.output / taken[0]).read_text() != "mine\n"


def test_stale_files_go_and_leave_no_empty_folder(
    large: Project, run: Callable[..., Result]
) -> None:
    build(large, run)
    (large.content / "season-02/03-episode-3.md").unlink()
    build(large, run)
    got = large.snapshot()
    assert got == reference(large, run)
    folders = [p for p in large.output.rglob("*") if p.is_dir()]
    assert all(any(f.iterdir()) for f in folders)


def test_a_failure_before_the_files_move_leaves_the_output_as_it_was(
    large: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    build(large, run)
    before = large.snapshot()
    large.write("season-01/01-episode-1.md", episode_text(1, "Changed title"))

    def fail(lock: object, output: Path) -> None:
        raise FamfeedsError("cannot save famfeeds.lock (test)")

    monkeypatch.setattr(famfeeds.build.pipeline, "_save_lock", fail)
    result = run(*build_args(large, "--as-of", AS_OF))
    assert result.exit_code == 1 and "test" in result.output
    assert {n: d for n, d in large.snapshot().items() if n != ".famfeeds-manifest"} == {
        n: d for n, d in before.items() if n != ".famfeeds-manifest"
    }
    monkeypatch.undo()
    monkeypatch.setattr(famfeeds.build.inplace, "PER_FILE_FROM", 1)
    build(large, run)
    assert large.snapshot() == reference(large, run)


def test_small_outputs_are_still_swapped_whole(
    project: Project, run: Callable[..., Result]
) -> None:
    project.show()
    project.season(1, episodes=2)
    build(project, run)
    folder_inode = project.output.stat().st_ino
    project.write("season-01/01-episode-1.md", episode_text(1, "Changed title"))
    build(project, run)
    assert project.output.stat().st_ino != folder_inode  # a new tree, swapped in
    assert not list(project.root.glob(".famfeeds-cache/outputs/*"))


def test_a_lost_index_means_a_whole_tree_build(large: Project, run: Callable[..., Result]) -> None:
    build(large, run)
    for index in large.root.glob(".famfeeds-cache/outputs/*"):
        index.unlink()
    folder_inode = large.output.stat().st_ino
    large.write("season-01/01-episode-1.md", episode_text(1, "Changed title"))
    build(large, run)
    assert large.output.stat().st_ino != folder_inode
    assert large.snapshot() == reference(large, run)
    assert list(large.root.glob(".famfeeds-cache/outputs/*"))  # and the index is back


def test_an_unchanged_rebuild_reads_no_issue_from_the_cache(
    large: Project, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored newsletter issues are compared by the digests in their headers: their bytes
    stay on disk unless a file changed."""
    from famfeeds.build.issue_cache import StoredParts

    large.show(**{"[author]": NEWSLETTER + "\n[author]"})
    build(large, run)
    issues = [n for n in large.snapshot() if n.startswith("newsletter/")]
    assert len(issues) > 3

    def refuse(self: StoredParts, name: str) -> bytes:
        raise AssertionError(f"read {name} from {self.body}")

    monkeypatch.setattr(StoredParts, "read", refuse)
    before = large.snapshot()
    build(large, run)
    assert large.snapshot() == before
