"""Builds that cannot hurt anything: dangerous --output values, mount points, devices, the
user's files, read-only and symlinked outputs, overlapping builds, and SIGKILL at random
moments and at each step of the write. The long kill loop is bench/faults_build.py."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from faults.buildkit import (
    AS_OF,
    KILLPOINT,
    build,
    command,
    environment,
    kill_trials,
    leftovers,
    lock_text,
    make_project,
    reference,
    sequences,
    set_title,
    tree,
    user_tree,
)
from support import Project, build_args


def must_be_root(what: str) -> None:
    assert os.geteuid() == 0, f"{what} needs root (CI runs the tests as root)"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake home folder with the kinds of things a build must never touch."""
    home = tmp_path / "home/someone"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    (home / ".ssh/id_ed25519").write_text("secret")
    (home / ".ssh/id_ed25519").chmod(0o600)
    (home / "Empty").mkdir()
    (home / "Documents").mkdir(mode=0o750)
    (home / "Documents/notes.txt").write_text("mine")
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def show(home: Path, monkeypatch: pytest.MonkeyPatch, run: Callable[..., Result]) -> Project:
    """A small project inside the fake home, built once; the working folder is its root."""
    project = make_project(home / "shows/test", seasons=2, per_season=3)
    (project.root / "templates").mkdir()
    monkeypatch.chdir(project.root)
    assert run(*build_args(project)).exit_code == 0
    (project.root / ".famfeeds-state").mkdir(mode=0o700)
    (project.root / ".famfeeds-state/ledger.sqlite3").write_bytes(b"SQLite format 3\0")
    return project


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("/", "it is the root of the filesystem"),
        ("~", "it is your home folder"),
        ("~/..", "it holds your home folder"),
        ("~/shows", "it holds the project folder"),
        (".", "it is the project folder"),
        ("content", "it is the content folder"),
        ("content/season-01", "it is inside the content folder"),
        (".famfeeds-state", "it is the delivery state folder"),
        (".famfeeds-state/public", "it is inside the delivery state folder"),
        (".famfeeds-cache", "it is the issue cache"),
        ("templates", "it is the templates folder"),
        ("famfeeds.lock", "is a file"),  # click's own check: exit status 2
    ],
)
def test_dangerous_outputs_are_refused_and_change_nothing(
    show: Project, home: Path, run: Callable[..., Result], output: str, reason: str
) -> None:
    before = tree(home.parent)
    root_before = sorted(Path("/").iterdir())
    result = run("build", "--content", "content", "--output", Path(output).expanduser())
    assert result.exit_code == (2 if output == "famfeeds.lock" else 1)
    assert reason in result.output, result.output
    assert "Traceback" not in result.output
    assert tree(home.parent) == before
    assert sorted(Path("/").iterdir()) == root_before


@pytest.fixture
def tmpfs() -> Iterator[Callable[[Path], Path]]:
    """Mount small tmpfs filesystems (as root, as CI runs); unmounted afterwards."""
    mounted: list[Path] = []

    def mount(where: Path) -> Path:
        must_be_root("mounting a tmpfs")
        where.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], check=True)
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", str(where)], check=True)


def test_a_mount_point_output_is_refused_and_a_folder_inside_it_works(
    project: Project, run: Callable[..., Result], tmpfs: Callable[[Path], Path]
) -> None:
    make_project(project.root, seasons=1, per_season=3)
    tmpfs(project.output)
    (project.output / "volume-file").write_text("on the volume")
    result = run(*build_args(project))
    assert result.exit_code == 1
    assert "is a mount point" in result.output
    assert f"--output {project.output}/site" in result.output
    assert sorted(p.name for p in project.output.iterdir()) == ["volume-file"]
    site = project.output / "site"
    assert run("build", "--content", project.content, "--output", site).exit_code == 0
    assert (site / "calendar.ics").exists()
    assert run("build", "--content", project.content, "--output", site).exit_code == 0
    assert sorted(p.name for p in project.output.iterdir()) == ["site", "volume-file"]


def test_a_filesystem_mounted_inside_the_output_is_never_emptied(
    project: Project, run: Callable[..., Result], tmpfs: Callable[[Path], Path]
) -> None:
    make_project(project.root, seasons=1, per_season=3)
    assert run(*build_args(project)).exit_code == 0
    media = tmpfs(project.output / "media")
    (media / "film.mkv").write_bytes(b"precious")
    before = user_tree(project.root)
    result = run(*build_args(project))
    assert result.exit_code == 1
    assert "it holds a mount point (media)" in result.output
    assert user_tree(project.root) == before


def test_a_device_in_the_output_is_refused_and_never_read(
    project: Project, run: Callable[..., Result]
) -> None:
    must_be_root("mknod")
    make_project(project.root, seasons=1, per_season=3)
    assert run(*build_args(project)).exit_code == 0
    (project.output / "urandom").symlink_to("/dev/urandom")  # a link: carried as a link
    assert run(*build_args(project)).exit_code == 0
    assert (project.output / "urandom").readlink() == Path("/dev/urandom")
    os.mknod(project.output / "zero", 0o644 | 0o020000, os.makedev(1, 5))  # like /dev/zero
    before = user_tree(project.root)
    result = run(*build_args(project))
    assert result.exit_code == 1
    assert "(a device, FIFO or socket): zero." in result.output
    assert user_tree(project.root) == before


def test_a_user_file_the_build_would_write_is_refused_then_replaced_on_request(
    project: Project, run: Callable[..., Result]
) -> None:
    make_project(project.root, seasons=1, per_season=3)
    project.output.mkdir()
    (project.output / "index.html").write_text("<p>my own page</p>")
    (project.output / "CNAME").write_text("shows.example.org")
    before = user_tree(project.root)
    result = run(*build_args(project))
    assert result.exit_code == 1
    assert "famfeeds did not make, which the build would replace: index.html." in result.output
    assert user_tree(project.root) == before
    result = run(*build_args(project, "--overwrite"))
    assert result.exit_code == 0
    assert "replaced index.html, which famfeeds had not made (--overwrite)" in result.output
    assert (project.output / "CNAME").read_text() == "shows.example.org"
    assert b"<p>my own page</p>" not in (project.output / "index.html").read_bytes()


def test_a_read_only_output_is_refused_before_anything_changes(
    project: Project, run: Callable[..., Result]
) -> None:
    make_project(project.root, seasons=1, per_season=3)
    assert run(*build_args(project)).exit_code == 0
    set_title(project, "A new title")
    project.output.chmod(0o555)
    before = user_tree(project.root)
    try:
        result = run(*build_args(project))
        assert result.exit_code == 1
        assert "output is read-only" in result.output and "Nothing was changed" in result.output
        assert user_tree(project.root) == before  # famfeeds.lock too: nothing was published
    finally:
        project.output.chmod(0o755)


def test_an_output_on_a_read_only_filesystem_is_refused(
    project: Project, run: Callable[..., Result], tmpfs: Callable[[Path], Path]
) -> None:
    make_project(project.root, seasons=1, per_season=3)
    volume = tmpfs(project.root / "volume")
    site = volume / "site"
    assert run("build", "--content", project.content, "--output", site).exit_code == 0
    subprocess.run(["mount", "-o", "remount,ro", str(volume)], check=True)
    before = user_tree(project.root)
    set_title(project, "A new title")
    result = run("build", "--content", project.content, "--output", site)
    assert result.exit_code == 1
    assert "is on a read-only filesystem" in result.output
    result = run("build", "--content", project.content, "--output", volume / "other")
    assert result.exit_code == 1
    assert "Read-only file system" in result.output and "Traceback" not in result.output
    set_title(project, "Episode 1")
    assert user_tree(project.root) == before


def test_a_symlinked_output_is_built_in_its_target(
    project: Project, run: Callable[..., Result]
) -> None:
    make_project(project.root, seasons=1, per_season=3)
    site = project.root / "www/site"
    site.mkdir(parents=True)
    (site / "CNAME").write_text("x")
    project.output.symlink_to(site)
    for title in ("First", "Second"):
        set_title(project, title)
        result = run(*build_args(project))
        assert result.exit_code == 0, result.output
        assert project.output.is_symlink() and project.output.readlink() == site
        assert f"{title}".encode() in (site / "feed.xml").read_bytes()
        assert (site / "CNAME").read_text() == "x"
    assert sorted(p.name for p in (project.root / "www").iterdir()) == ["site"]


def test_a_second_build_waits_for_the_first_or_gives_up_after_wait(project: Project) -> None:
    make_project(project.root, seasons=1, per_season=3)
    fd = os.open(project.root, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a build writing next to output/ would
    try:
        gave_up = build(project, "--wait", "1.5")
        assert gave_up.returncode == 1
        assert "Waiting for another famfeeds build writing in" in gave_up.stderr
        assert "gave up waiting after 1.5 s" in gave_up.stderr
        assert not project.output.exists()
        waiting = subprocess.Popen(
            command(project), stderr=subprocess.PIPE, text=True, env=environment()
        )
        assert waiting.stderr is not None
        assert waiting.stderr.readline().startswith("Waiting for another famfeeds build")
    finally:
        os.close(fd)
    assert waiting.wait(60) == 0
    waiting.stderr.close()
    assert (project.output / "calendar.ics").exists()


def test_overlapping_builds_leave_exactly_one_build(project: Project, tmp_path: Path) -> None:
    make_project(project.root / "project", seasons=30, per_season=10)
    project = Project(project.root / "project")
    assert build(project).returncode == 0
    refs = {
        as_of: reference(project, tmp_path / f"ref-{as_of}", as_of)
        for as_of in ("2006-06-01", "2007-06-01")
    }
    assert {lock for _, lock in refs.values()} == {lock_text(project)}  # so order is moot
    barrier = threading.Barrier(2)
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def run_one(as_of: str) -> None:
        args = [*command(project)[:-1], as_of]
        barrier.wait()
        results[as_of] = subprocess.run(args, capture_output=True, text=True, env=environment())

    threads = [threading.Thread(target=run_one, args=(a,)) for a in refs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for done in results.values():
        assert done.returncode == 0, done.stderr
    assert tree(project.output) in [t for t, _ in refs.values()]
    assert sorted(p.name for p in project.root.iterdir()) == [
        ".famfeeds-cache",
        "content",
        "famfeeds.lock",
        "output",
    ]


@pytest.mark.parametrize(
    "point", ["mid-staging", "before-lock-save", "after-lock-save", "after-swap"]
)
def test_a_kill_at_each_step_never_lowers_a_sequence(
    project: Project, tmp_path: Path, run: Callable[..., Result], point: str
) -> None:
    make_project(project.root, seasons=1, per_season=3)
    assert run(*build_args(project, "--as-of", AS_OF)).exit_code == 0
    published = sequences(project.output)
    old_tree, old_lock = tree(project.output), lock_text(project)
    set_title(project, "Changed")
    new_tree, new_lock = reference(project, tmp_path / "ref")
    killed = subprocess.run(
        [sys.executable, str(KILLPOINT), point, *command(project)[3:]],
        capture_output=True,
        env=environment(),
    )
    assert killed.returncode == -9, killed.stderr
    after, lock = tree(project.output), lock_text(project)
    expected = {
        "mid-staging": (old_tree, old_lock),
        "before-lock-save": (old_tree, old_lock),
        "after-lock-save": (old_tree, new_lock),
        "after-swap": (new_tree, new_lock),
    }[point]
    assert (after, lock) == expected
    for uid, sequence in sequences(project.output).items():
        assert sequence >= published[uid]
        published[uid] = sequence
    set_title(project, "Episode 1")  # undo the change: a lock behind its output shows here
    assert run(*build_args(project, "--as-of", AS_OF)).exit_code == 0
    for uid, sequence in sequences(project.output).items():
        assert sequence >= published[uid], f"{uid} went from {published[uid]} to {sequence}"
    assert leftovers(project) == []


@pytest.mark.parametrize("seed", [20261128])
def test_random_kills_leave_old_or_new_and_sequences_rising(
    project: Project, tmp_path: Path, seed: int
) -> None:
    make_project(project.root, seasons=5, per_season=10)
    tally = kill_trials(project, tmp_path / "ref", trials=3, seed=seed)
    assert tally.violations == []
    assert tally.output_old + tally.output_new == tally.trials == 3  # more: bench/faults_build.py
