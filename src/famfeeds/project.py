"""Where a project keeps things: every per-project path, derived once from the content folder.

A project is the folder that holds ``content/``. Beside it live the calendar's lock file
(committed), the issue cache and the delivery state (neither committed), and optionally the
project's own ``templates/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import Environment

LOCK_NAME = "famfeeds.lock"
CACHE_DIR = ".famfeeds-cache"
STATE_DIR = ".famfeeds-state"
PREVIEW_DIR = ".famfeeds-preview"
TEMPLATES_DIR = "templates"
LOCALE_DIR = "locale"
LEDGER_NAME = "ledger.sqlite3"
STORE_NAME = "subscribers.sqlite3"
SECRET_NAME = "secret.key"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


@dataclass(frozen=True)
class Project:
    """The paths of one project, absolute."""

    content: Path
    root: Path

    @classmethod
    def of(cls, content: Path) -> Project:
        """The project whose content folder is ``content`` (its root is the parent)."""
        content = content.absolute()
        return cls(content, content.parent)

    @property
    def lock(self) -> Path:
        """famfeeds.lock: the calendar's published history; commit it."""
        return self.root / LOCK_NAME

    @property
    def cache(self) -> Path:
        """The issue cache: disposable."""
        return self.root / CACHE_DIR

    @property
    def state(self) -> Path:
        """The delivery state folder (ledger, subscriber store, secret): private, not committed."""
        return self.root / STATE_DIR

    @property
    def ledger(self) -> Path:
        """The delivery ledger."""
        return self.state / LEDGER_NAME

    @property
    def store(self) -> Path:
        """The subscriber store."""
        return self.state / STORE_NAME

    @property
    def secret(self) -> Path:
        """The project's secret key file (0600)."""
        return self.state / SECRET_NAME

    @property
    def preview(self) -> Path:
        """Where ``famfeeds serve`` builds by default."""
        return self.root / PREVIEW_DIR

    def templates(self, given: Path | None = None) -> Path:
        """The project's own templates: ``given``, else ``templates/`` beside the content."""
        return given if given is not None else self.root / TEMPLATES_DIR

    @property
    def locale(self) -> Path:
        """The project's own message catalogues: locale/<lang>/LC_MESSAGES/famfeeds.po."""
        return self.root / LOCALE_DIR

    def private_state(self) -> Path:
        """The state folder, created 0700 (and tightened if it exists), with a .gitignore so
        that ``git status`` never shows it."""
        private_folder(self.state)
        ignore = self.state / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# famfeeds delivery state: holds addresses\n*\n", encoding="utf-8")
        return self.state


def private_folder(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700, tightening it if it exists."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    if path.stat().st_mode & 0o777 != PRIVATE_DIR_MODE:
        path.chmod(PRIVATE_DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 if missing, else tighten its mode.

    An existing file is only chmod-ed, never opened: closing any descriptor of a file drops
    every POSIX lock this process holds on it, including SQLite's in other threads, and
    another process could then delete the WAL that holds their commits.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        if path.stat().st_mode & 0o777 != PRIVATE_FILE_MODE:
            path.chmod(PRIVATE_FILE_MODE)
    return path


def shipped_templates() -> Path:
    """The default templates: inside the installed wheel, or the repository's templates/."""
    packaged = Path(__file__).parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


def template_environment(
    project_templates: Path | None, language: str, project_locale: Path | None = None
) -> Environment:
    """A Jinja2 environment searching ``project_templates`` before the shipped ones, with the
    catalogue of ``language`` (a show's language tag) installed; ``project_locale`` holds the
    project's own catalogues (see :mod:`famfeeds.translations`)."""
    from jinja2 import ChoiceLoader, FileSystemLoader

    from famfeeds.render.templating import make_environment
    from famfeeds.translations import load_messages

    messages = load_messages(language, project_locale)
    loaders = []
    if project_templates is not None and project_templates.is_dir():
        loaders.append(FileSystemLoader(project_templates))
    loaders.append(FileSystemLoader(shipped_templates()))
    return make_environment(ChoiceLoader(loaders), messages)
