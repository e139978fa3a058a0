"""Compiled templates kept in the user's cache (famfeeds.build.project.template_bytecode_cache):
a build that finds them gives the same bytes, an edited template is compiled afresh, and
a cache that cannot be read or written only makes the build slower."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO, SHIPPED_CONTENT


def _build(project: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "famfeeds", "build", "--content", str(project / "content"),
         "--output", str(project / "output"), "--as-of", "2024-01-31", *extra],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("famfeeds/templates-*/*.cache"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(SHIPPED_CONTENT, tmp_path / "p" / "content")
    shutil.copy(REPO / "famfeeds.lock", tmp_path / "p" / "famfeeds.lock")
    return tmp_path / "p"


def _fresh(project: Path) -> None:
    for name in ("output", ".famfeeds-cache"):
        shutil.rmtree(project / name, ignore_errors=True)
    shutil.copy(REPO / "famfeeds.lock", project / "famfeeds.lock")


def test_compiled_templates_give_the_same_build(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _build(project, cache)
    assert first.returncode == 0, first.stderr
    compiled = _entries(cache)
    assert len(compiled) >= 5  # the page, feed, newsletter and calendar templates
    folder = compiled[0].parent
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    cold = _tree(project / "output")
    _fresh(project)
    again = _build(project, cache)  # a new project's first build, templates compiled before
    assert again.returncode == 0, again.stderr
    assert _tree(project / "output") == cold
    assert _entries(cache) == compiled


def test_an_edited_project_template_is_compiled_again(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    templates = project / "templates"
    templates.mkdir()
    base = (REPO / "templates" / "base.html.j2").read_text("utf-8")
    (templates / "base.html.j2").write_text(base.replace("</body>", "<p>First</p></body>"))
    assert _build(project, cache).returncode == 0
    assert "<p>First</p>" in (project / "output" / "index.html").read_text("utf-8")
    stamp = (templates / "base.html.j2").stat()
    (templates / "base.html.j2").write_text(base.replace("</body>", "<p>Other</p></body>"))
    os.utime(templates / "base.html.j2", ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # same time
    result = _build(project, cache)
    assert result.returncode == 0, result.stderr
    page = (project / "output" / "index.html").read_text("utf-8")
    assert "<p>Other</p>" in page and "<p>First</p>" not in page


def test_a_damaged_or_unwritable_cache_only_slows_the_build(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert _build(project, cache).returncode == 0
    expected = _tree(project / "output")
    for entry in _entries(cache):  # truncated, and garbage
        entry.write_bytes(entry.read_bytes()[: len(entry.read_bytes()) // 2])
    _entries(cache)[0].write_bytes(b"not a compiled template")
    _fresh(project)
    result = _build(project, cache)
    assert result.returncode == 0, result.stderr
    assert _tree(project / "output") == expected

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be")
    _fresh(project)
    result = _build(project, blocked)
    assert result.returncode == 0, result.stderr
    assert _tree(project / "output") == expected
    assert result.stderr == ""


def test_the_templates_key_follows_linked_folders_and_ends_on_a_loop(tmp_path: Path) -> None:
    """famfeeds.build.issue_cache.template_names: files behind a linked folder count, a link
    back to a folder leading to it is not followed, and a folder linked twice counts
    under both names (Jinja loads either)."""
    from jinja2 import ChoiceLoader, FileSystemLoader

    from famfeeds.build.issue_cache import template_names

    theme, project = tmp_path / "theme", tmp_path / "templates"
    theme.mkdir()
    project.mkdir()
    (theme / "extra.html").write_text("x")
    (project / "page.html.j2").write_text("y")
    (project / "partials").symlink_to(theme, target_is_directory=True)
    (project / "again").symlink_to(theme, target_is_directory=True)
    (theme / "up").symlink_to(project, target_is_directory=True)
    (project / "self").symlink_to(project, target_is_directory=True)
    names = template_names(ChoiceLoader([FileSystemLoader(project)]))
    assert {"page.html.j2", "partials/extra.html", "again/extra.html"} <= names
    assert not any(name.count("/") > 2 for name in names)


def test_a_dangling_link_in_the_templates_folder_does_not_stop_the_build(tmp_path: Path) -> None:
    """An editor's lock file (Emacs writes `.#name` as a link to nowhere) beside the project's
    templates: no template uses it, so the build goes on and gives the usual bytes."""
    project = tmp_path / "project"
    shutil.copytree(SHIPPED_CONTENT, project / "content")
    (project / "templates").mkdir()
    (project / "templates" / ".#newsletter.html").symlink_to("user@host.1234:1700000000")
    done = _build(project, tmp_path / "cache")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    plain = tmp_path / "plain"
    shutil.copytree(SHIPPED_CONTENT, plain / "content")
    assert _build(plain, tmp_path / "cache2").returncode == 0
    assert _tree(project / "output") == _tree(plain / "output")
