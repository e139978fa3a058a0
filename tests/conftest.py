"""Fixtures: a project folder to build, the shipped season, and a CLI runner."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from famfeeds.cli import cli
from support import REPO, SHIPPED_CONTENT, Project


def pytest_configure(config: pytest.Config) -> None:
    """Compiled templates go to a cache of this test run (famfeeds.build.project.user_cache),
    never to the user's own; processes the tests start inherit it."""
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="famfeeds-test-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Each pytest process (every xdist worker too) removes the cache folder it made."""
    cache = os.environ.get("XDG_CACHE_HOME", "")
    if Path(cache).name.startswith("famfeeds-test-cache-"):
        shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


@pytest.fixture
def shipped(tmp_path: Path) -> Project:
    """A copy of the shipped For All Mankind content."""
    shutil.copytree(SHIPPED_CONTENT, tmp_path / "content")
    shutil.copy(REPO / "famfeeds.lock", tmp_path / "famfeeds.lock")
    return Project(tmp_path)


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Invoke the CLI in-process; SOURCE_DATE_EPOCH is cleared unless a test sets it."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)

    def invoke(*args: str | Path) -> Result:
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return invoke
